import Contracts
import SQLiteNIO

/// The Pier One API's reads and the notification outbox on SQLite.
extension SQLiteMetadataStore {
    /// The team of a repository name: everything before the first `/`.
    private static let team = "substr(r.name, 1, instr(r.name, '/') - 1)"
    private static let hasTags = "EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = r.id)"

    func teams(page: PageRequest) async throws -> Page<String> {
        let rows = try await self.reader.query(
            """
            SELECT DISTINCT \(Self.team) AS team FROM repositories r
            WHERE \(Self.hasTags) AND \(Self.team) > ?1 \(page.prefix == nil ? "" : "AND r.name >= ?3 AND r.name < ?4")
            ORDER BY team LIMIT ?2
            """,
            // With a prefix, a range of the repositories' names (their unique index).
            [.text(page.after ?? ""), .integer(page.effectiveLimit + 1)]
                + (page.prefix.map { [.text($0), .text(PageRequest.prefixEnd($0))] } ?? [])
        )
        return Self.page(rows.compactMap { $0.column("team")?.string }, page)
    }

    func artifacts(ofTeam team: String, page: PageRequest) async throws -> Page<String> {
        // The names of a team are the range ("team/", "team0"): "0" follows "/".
        let rows = try await self.reader.query(
            """
            SELECT substr(r.name, length(?1) + 2) AS artifact FROM repositories r
            WHERE r.name > ?1 || '/' || ?2 AND r.name < ?1 || '0' AND \(Self.hasTags)
              AND r.name >= ?1 || '/' || ?4 AND r.name < ?1 || '/' || ?5
            ORDER BY r.name LIMIT ?3
            """,
            [
                .text(team), .text(page.after ?? ""), .integer(page.effectiveLimit + 1), .text(page.prefix ?? ""),
                .text(page.prefix.map(PageRequest.prefixEnd) ?? "\u{7F}"),
            ]
        )
        return Self.page(rows.compactMap { $0.column("artifact")?.string }, page)
    }

    func tagDetails(in repository: RepositoryName, page: PageRequest) async throws -> Page<TagDetail>? {
        let reader = self.reader
        guard let id = try await Self.repositoryID(repository, on: reader) else { return nil }
        let columns = "t.name, t.updated_at, t.pushed_by, t.manifest_digest, m.media_type, m.total_size, m.image_id, t.pulled_at"
        let join = "tags t JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest"
        let rows: [SQLiteRow]
        if let prefix = page.prefix {
            // In name order: a range of the primary key.
            rows = try await reader.query(
                """
                SELECT \(columns) FROM \(join)
                WHERE t.repository_id = ?1 AND t.name >= ?2 AND t.name < ?3 AND t.name > ?4 AND (?5 IS NULL OR t.manifest_digest = ?5)
                ORDER BY t.name LIMIT ?6
                """,
                [
                    .integer(id), .text(prefix), .text(PageRequest.prefixEnd(prefix)), .text(page.after ?? ""),
                    page.manifest.map { .text($0.description) } ?? .null, .integer(page.effectiveLimit + 1),
                ]
            )
        } else {
            rows = try await reader.query(
                """
                SELECT \(columns) FROM \(join)
                WHERE t.repository_id = ?1 AND (?4 IS NULL OR t.manifest_digest = ?4)
                  AND (?2 IS NULL OR (t.updated_at, t.name) \(page.newestFirst ? "<" : ">")
                       (SELECT updated_at, name FROM tags WHERE repository_id = ?1 AND name = ?2))
                ORDER BY t.updated_at \(page.newestFirst ? "DESC" : "ASC"), t.name \(page.newestFirst ? "DESC" : "ASC") LIMIT ?3
                """,
                [
                    .integer(id), page.after.map { .text($0) } ?? .null, .integer(page.effectiveLimit + 1),
                    page.manifest.map { .text($0.description) } ?? .null,
                ]
            )
        }
        let details = rows.compactMap { row -> TagDetail? in
            guard let name = row.column("name")?.string, let created = row.column("updated_at")?.integer,
                  let digest = row.column("manifest_digest")?.string.flatMap({ Digest($0) }),
                  let mediaType = row.column("media_type")?.string
            else { return nil }
            var detail = TagDetail(
                name: name, createdMillis: Int64(created), createdBy: row.column("pushed_by")?.string,
                manifestDigest: digest, mediaType: mediaType, totalSize: Int64(row.column("total_size")?.integer ?? 0),
                imageID: row.column("image_id")?.string.flatMap { Digest($0) } ?? digest, immutable: false
            )
            detail.pulledMillis = row.column("pulled_at")?.integer.map(Int64.init)
            return detail
        }
        // An artifact exists with or without tags matching a filter.
        if details.isEmpty, page.after == nil, page.prefix == nil, page.manifest == nil { return nil }
        return Page(items: Array(details.prefix(page.effectiveLimit)), hasMore: details.count > page.effectiveLimit)
    }

    func scmSource(of tag: Tag, in repository: RepositoryName) async throws -> ScmSource? {
        let rows = try await self.reader.query(
            """
            SELECT s.url, s.revision, s.author, s.status, s.origin, s.created_at
            FROM tags t JOIN repositories r ON r.id = t.repository_id
            JOIN scm_sources s ON s.repository_id = t.repository_id AND s.manifest_digest = t.manifest_digest
            WHERE r.name = ?1 AND t.name = ?2
            """,
            [.text(repository.value), .text(tag.value)]
        )
        guard let row = rows.first, let origin = row.column("origin")?.string.flatMap(ScmSource.Origin.init(rawValue:))
        else { return nil }
        return ScmSource(
            url: row.column("url")?.string, revision: row.column("revision")?.string,
            author: row.column("author")?.string, status: row.column("status")?.string, origin: origin,
            createdMillis: Int64(row.column("created_at")?.integer ?? 0)
        )
    }

    func recordScmSource(_ source: ScmSource, for manifest: Digest, in repository: RepositoryName) async throws {
        try await self.transaction { connection in
            try await Self.recordScmSource(source, for: manifest, in: repository, on: connection)
        }
    }

    static func recordScmSource(
        _ source: ScmSource, for manifest: Digest, in repository: RepositoryName, on connection: SQLiteConnection
    ) async throws {
        func text(_ value: String?) -> SQLiteData { value.map { .text($0) } ?? .null }
        _ = try await connection.query(
            """
            INSERT INTO scm_sources (repository_id, manifest_digest, url, revision, author, status, origin, created_at)
            SELECT m.repository_id, m.digest, ?3, ?4, ?5, ?6, ?7, ?8
            FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.name = ?1 AND m.digest = ?2
            ON CONFLICT (repository_id, manifest_digest) DO UPDATE SET
                url = excluded.url, revision = excluded.revision, author = excluded.author, status = excluded.status,
                origin = excluded.origin, created_at = excluded.created_at
            WHERE excluded.origin = 'header'
            """,
            [
                .text(repository.value), .text(manifest.description), text(source.url), text(source.revision),
                text(source.author), text(source.status), .text(source.origin.rawValue), .integer(Int(source.createdMillis)),
            ]
        )
    }

    func imageTags(idPrefix prefix: String) async throws -> ImageLookup {
        let reader = self.reader
        // Digests are ASCII below "~", so [prefix, prefix + "~") is every id starting with prefix.
        let images = try await reader.query(
            """
            SELECT DISTINCT m.image_id FROM manifests m
            WHERE m.image_id >= ?1 AND m.image_id < ?1 || '~'
              AND EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest)
            LIMIT 2
            """,
            [.text(prefix)]
        ).compactMap { $0.column("image_id")?.string }
        guard let image = images.first else { return .none }
        guard images.count == 1 else { return .ambiguous }
        let rows = try await reader.query(
            """
            SELECT t.name AS tag, r.name AS repository FROM manifests m
            JOIN tags t ON t.repository_id = m.repository_id AND t.manifest_digest = m.digest
            JOIN repositories r ON r.id = m.repository_id
            WHERE m.image_id = ?1 ORDER BY r.name, t.name LIMIT \(PageRequest.maximumLimit * 10)
            """,
            [.text(image)]
        )
        return .tags(rows.compactMap { row in
            guard let tag = row.column("tag")?.string, let name = row.column("repository")?.string.flatMap(RepositoryName.init)
            else { return nil }
            return ImageTagReference(name: tag, team: name.team, artifact: name.artifact)
        })
    }

    func statistics() async throws -> RegistryStatistics {
        let rows = try await self.reader.query(
            """
            SELECT
                (SELECT COUNT(DISTINCT \(Self.team)) FROM repositories r WHERE \(Self.hasTags)) AS teams,
                (SELECT COUNT(*) FROM repositories r WHERE \(Self.hasTags)) AS artifacts,
                (SELECT COUNT(*) FROM tags) AS tags,
                (SELECT COALESCE(SUM(size), 0) FROM blobs) AS storage
            """
        )
        let row = rows.first
        return RegistryStatistics(
            teams: row?.column("teams")?.integer ?? 0, artifacts: row?.column("artifacts")?.integer ?? 0,
            tags: row?.column("tags")?.integer ?? 0, storage: Int64(row?.column("storage")?.integer ?? 0)
        )
    }

    func teamStatistics(page: PageRequest) async throws -> Page<TeamStatistics> {
        try await self.teamStatistics(after: page.after ?? "", only: nil, limit: page.effectiveLimit)
    }

    func teamStatistics(team: String) async throws -> TeamStatistics? {
        try await self.teamStatistics(after: "", only: team, limit: 1).items.first
    }

    /// Counts per team (teams after `after`, or just `only`), then the storage of those teams.
    private func teamStatistics(after: String, only: String?, limit: Int) async throws -> Page<TeamStatistics> {
        let reader = self.reader
        let rows = try await reader.query(
            """
            SELECT team, COUNT(*) AS artifacts, SUM(tag_count) AS tags FROM (
                SELECT \(Self.team) AS team, (SELECT COUNT(*) FROM tags t WHERE t.repository_id = r.id) AS tag_count
                FROM repositories r
            ) WHERE tag_count > 0 AND team > ?1 AND (?2 IS NULL OR team = ?2)
            GROUP BY team ORDER BY team LIMIT ?3
            """,
            [.text(after), only.map { .text($0) } ?? .null, .integer(limit + 1)]
        )
        var teams = rows.compactMap { row -> TeamStatistics? in
            guard let team = row.column("team")?.string else { return nil }
            return TeamStatistics(
                team: team, artifacts: row.column("artifacts")?.integer ?? 0, tags: row.column("tags")?.integer ?? 0,
                storage: 0
            )
        }
        let hasMore = teams.count > limit
        teams = Array(teams.prefix(limit))
        guard let first = teams.first?.team, let last = teams.last?.team else { return Page(items: [], hasMore: false) }
        let storage = try await reader.query(
            """
            SELECT team, SUM(size) AS storage, COUNT(*) AS blobs FROM (
                SELECT DISTINCT \(Self.team) AS team, b.digest, b.size
                FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id JOIN blobs b ON b.digest = rb.digest
                WHERE r.name >= ?1 || '/' AND r.name < ?2 || '0'
            ) GROUP BY team
            """,
            [.text(first), .text(last)]
        )
        var stored: [String: (bytes: Int64, blobs: Int)] = [:]
        for row in storage {
            if let team = row.column("team")?.string {
                stored[team] = (Int64(row.column("storage")?.integer ?? 0), row.column("blobs")?.integer ?? 0)
            }
        }
        for index in teams.indices {
            teams[index].storage = stored[teams[index].team]?.bytes ?? 0
            teams[index].blobs = stored[teams[index].team]?.blobs ?? 0
        }
        return Page(items: teams, hasMore: hasMore)
    }

    func artifactStatistics(ofTeam team: String, page: PageRequest) async throws -> Page<ArtifactStatistics> {
        let rows = try await self.reader.query(
            """
            SELECT substr(r.name, length(?1) + 2) AS artifact,
                   (SELECT COUNT(*) FROM tags t WHERE t.repository_id = r.id) AS tag_count,
                   (SELECT MAX(t.updated_at) FROM tags t WHERE t.repository_id = r.id) AS last_push,
                   (SELECT COALESCE(SUM(b.size), 0) FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                    WHERE rb.repository_id = r.id) AS storage,
                   (SELECT COUNT(*) FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                    WHERE rb.repository_id = r.id) AS blob_count
            FROM repositories r
            WHERE r.name > ?1 || '/' || ?2 AND r.name < ?1 || '0' AND \(Self.hasTags)
            ORDER BY r.name LIMIT ?3
            """,
            [.text(team), .text(page.after ?? ""), .integer(page.effectiveLimit + 1)]
        )
        let items = rows.compactMap { row -> ArtifactStatistics? in
            guard let artifact = row.column("artifact")?.string else { return nil }
            return ArtifactStatistics(
                artifact: artifact, tags: row.column("tag_count")?.integer ?? 0, storage: Int64(row.column("storage")?.integer ?? 0),
                blobs: row.column("blob_count")?.integer ?? 0, lastPushMillis: Int64(row.column("last_push")?.integer ?? 0)
            )
        }
        return Page(items: Array(items.prefix(page.effectiveLimit)), hasMore: items.count > page.effectiveLimit)
    }

    private static func page(_ names: [String], _ page: PageRequest) -> Page<String> {
        Page(items: Array(names.prefix(page.effectiveLimit)), hasMore: names.count > page.effectiveLimit)
    }

    // MARK: Outbox

    /// Writes one outbox row per sink for `event` (inside the tag's transaction).
    func enqueue(_ event: TagEvent, on connection: SQLiteConnection) async throws {
        let payload = event.json
        for sink in self.outboxSinks {
            _ = try await connection.query(
                "INSERT INTO notification_outbox (sink, payload, created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?3)",
                [.text(sink), .text(payload), .integer(Self.now)]
            )
        }
    }

    func claimNotifications(sink: String, limit: Int, lease: Duration) async throws -> [OutboxEntry] {
        try await self.transaction { connection in
            let now = Self.now
            let rows = try await connection.query(
                """
                UPDATE notification_outbox SET next_attempt_at = ?3, attempts = attempts + 1
                WHERE id IN (
                    SELECT id FROM notification_outbox WHERE sink = ?1 AND next_attempt_at <= ?2 ORDER BY id LIMIT ?4
                )
                RETURNING id, payload, attempts
                """,
                [.text(sink), .integer(now), .integer(now + Int(lease.milliseconds)), .integer(limit)]
            )
            return rows.compactMap { row -> OutboxEntry? in
                guard let id = row.column("id")?.integer, let payload = row.column("payload")?.string else { return nil }
                return OutboxEntry(id: Int64(id), sink: sink, payload: payload, attempts: row.column("attempts")?.integer ?? 1)
            }.sorted { $0.id < $1.id }
        }
    }

    func completeNotification(id: Int64) async throws {
        try await self.transaction { connection in
            _ = try await connection.query("DELETE FROM notification_outbox WHERE id = ?1", [.integer(Int(id))])
        }
    }

    func postponeNotification(id: Int64, delay: Duration, error: String) async throws {
        try await self.transaction { connection in
            _ = try await connection.query(
                "UPDATE notification_outbox SET next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
                [.integer(Int(id)), .integer(Self.now + Int(delay.milliseconds)), .text(String(error.prefix(1000)))]
            )
        }
    }

    func notificationBacklog() async throws -> [String: Int] {
        let rows = try await self.reader.query("SELECT sink, COUNT(*) AS waiting FROM notification_outbox GROUP BY sink")
        var backlog: [String: Int] = [:]
        for row in rows {
            if let sink = row.column("sink")?.string { backlog[sink] = row.column("waiting")?.integer ?? 0 }
        }
        return backlog
    }
}
