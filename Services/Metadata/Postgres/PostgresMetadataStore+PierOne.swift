import Contracts
import Logging
import PostgresNIO

/// The Pier One API's reads and the notification outbox on PostgreSQL.
extension PostgresMetadataStore {
    private static func millis(_ column: String) -> String { "(extract(epoch FROM \(column)) * 1000)::bigint" }

    func teams(page: PageRequest) async throws -> Page<String> {
        try await self.run {
            let rows = try await self.client.query(
                """
                SELECT DISTINCT split_part(r.name, '/', 1) COLLATE "C" AS team FROM repositories r
                WHERE EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = r.id)
                  AND split_part(r.name, '/', 1) COLLATE "C" > \(page.after ?? "")
                  AND (\(page.prefix)::text IS NULL OR (r.name >= \(page.prefix) AND r.name < \(page.prefix.map(PageRequest.prefixEnd))))
                ORDER BY team LIMIT \(page.effectiveLimit + 1)
                """, logger: self.logger
            )
            var names: [String] = []
            for try await name in rows.decode(String.self) { names.append(name) }
            return Self.page(names, page)
        }
    }

    func artifacts(ofTeam team: String, page: PageRequest) async throws -> Page<String> {
        try await self.run {
            // The names of a team are the range ("team/", "team0"): "0" follows "/".
            let rows = try await self.client.query(
                """
                SELECT substr(r.name, length(\(team)) + 2) FROM repositories r
                WHERE r.name > \(team + "/" + (page.after ?? "")) AND r.name < \(team + "0")
                  AND r.name >= \(team + "/" + (page.prefix ?? "")) AND r.name < \(team + "/" + PageRequest.prefixEnd(page.prefix ?? ""))
                  AND EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = r.id)
                ORDER BY r.name LIMIT \(page.effectiveLimit + 1)
                """, logger: self.logger
            )
            var names: [String] = []
            for try await name in rows.decode(String.self) { names.append(name) }
            return Self.page(names, page)
        }
    }

    func tagDetails(in repository: RepositoryName, page: PageRequest) async throws -> Page<TagDetail>? {
        try await self.run {
            let rows = try await self.client.query(
                """
                SELECT t.name, \(unescaped: Self.millis("t.updated_at")), t.pushed_by, t.manifest_digest, m.media_type,
                       COALESCE(m.total_size, m.size), COALESCE(m.image_id, m.digest), t.pulled_at
                FROM repositories r
                JOIN tags t ON t.repository_id = r.id
                JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
                WHERE r.name = \(repository.value)
                  AND (\(page.manifest?.description)::text IS NULL OR t.manifest_digest = \(page.manifest?.description))
                  AND (\(page.prefix)::text IS NOT NULL OR \(page.after)::text IS NULL OR (t.updated_at, t.name) \(unescaped: page.newestFirst ? "<" : ">") (
                      SELECT a.updated_at, a.name FROM tags a WHERE a.repository_id = r.id AND a.name = \(page.after)))
                  AND (\(page.prefix)::text IS NULL OR (t.name >= \(page.prefix) AND t.name < \(page.prefix.map(PageRequest.prefixEnd))
                       AND t.name > \(page.after ?? "")))
                ORDER BY \(unescaped: page.prefix != nil ? "t.name" : "t.updated_at \(page.newestFirst ? "DESC" : "ASC"), t.name \(page.newestFirst ? "DESC" : "ASC")")
                LIMIT \(page.effectiveLimit + 1)
                """, logger: self.logger
            )
            var details: [TagDetail] = []
            for try await (name, created, pushedBy, digest, mediaType, size, image, pulled) in rows.decode(
                (String, Int64, String?, String, String, Int64, String, Int64?).self
            ) {
                guard let digest = Digest(digest) else { continue }
                var detail = TagDetail(
                    name: name, createdMillis: created, createdBy: pushedBy, manifestDigest: digest, mediaType: mediaType,
                    totalSize: size, imageID: Digest(image) ?? digest, immutable: false
                )
                detail.pulledMillis = pulled
                details.append(detail)
            }
            if details.isEmpty, page.after == nil {
                // An artifact exists with or without tags matching a filter.
                guard page.prefix != nil || page.manifest != nil else { return nil }
                let found = try await self.client.query("SELECT 1 FROM repositories WHERE name = \(repository.value)", logger: self.logger)
                for try await _ in found.decode(Int.self) { return Page(items: [], hasMore: false) }
                return nil
            }
            return Page(items: Array(details.prefix(page.effectiveLimit)), hasMore: details.count > page.effectiveLimit)
        }
    }

    func scmSource(of tag: Contracts.Tag, in repository: RepositoryName) async throws -> ScmSource? {
        try await self.run {
            let rows = try await self.client.query(
                """
                SELECT s.url, s.revision, s.author, s.status, s.origin, \(unescaped: Self.millis("s.created_at"))
                FROM tags t JOIN repositories r ON r.id = t.repository_id
                JOIN scm_sources s ON s.repository_id = t.repository_id AND s.manifest_digest = t.manifest_digest
                WHERE r.name = \(repository.value) AND t.name = \(tag.value)
                """, logger: self.logger
            )
            for try await (url, revision, author, status, origin, created) in rows.decode(
                (String?, String?, String?, String?, String, Int64).self
            ) {
                guard let origin = ScmSource.Origin(rawValue: origin) else { continue }
                return ScmSource(
                    url: url, revision: revision, author: author, status: status, origin: origin, createdMillis: created
                )
            }
            return nil
        }
    }

    func recordScmSource(_ source: ScmSource, for manifest: Digest, in repository: RepositoryName) async throws {
        let logger = self.logger
        try await self.transaction { connection in
            try await Self.recordScmSource(source, for: manifest, in: repository, on: connection, logger: logger)
        }
    }

    static func recordScmSource(
        _ source: ScmSource, for manifest: Digest, in repository: RepositoryName, on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO scm_sources (repository_id, manifest_digest, url, revision, author, status, origin, created_at)
            SELECT m.repository_id, m.digest, \(source.url), \(source.revision), \(source.author), \(source.status),
                   \(source.origin.rawValue), to_timestamp(\(Double(source.createdMillis) / 1000))
            FROM manifests m JOIN repositories r ON r.id = m.repository_id
            WHERE r.name = \(repository.value) AND m.digest = \(manifest.description)
            ON CONFLICT (repository_id, manifest_digest) DO UPDATE SET
                url = excluded.url, revision = excluded.revision, author = excluded.author, status = excluded.status,
                origin = excluded.origin, created_at = excluded.created_at
            WHERE excluded.origin = 'header'
            """, logger: logger
        )
    }

    func imageTags(idPrefix prefix: String) async throws -> ImageLookup {
        try await self.run {
            // Digests are ASCII below "~", so [prefix, prefix + "~") is every id starting with prefix.
            let images = try await self.client.query(
                """
                SELECT DISTINCT m.image_id FROM manifests m
                WHERE m.image_id >= \(prefix) AND m.image_id < \(prefix + "~")
                  AND EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest)
                LIMIT 2
                """, logger: self.logger
            )
            var ids: [String] = []
            for try await id in images.decode(String.self) { ids.append(id) }
            guard let image = ids.first else { return .none }
            guard ids.count == 1 else { return .ambiguous }
            let rows = try await self.client.query(
                """
                SELECT t.name, r.name FROM manifests m
                JOIN tags t ON t.repository_id = m.repository_id AND t.manifest_digest = m.digest
                JOIN repositories r ON r.id = m.repository_id
                WHERE m.image_id = \(image) ORDER BY r.name, t.name LIMIT \(PageRequest.maximumLimit * 10)
                """, logger: self.logger
            )
            var references: [ImageTagReference] = []
            for try await (tag, name) in rows.decode((String, String).self) {
                guard let name = RepositoryName(name) else { continue }
                references.append(ImageTagReference(name: tag, team: name.team, artifact: name.artifact))
            }
            return .tags(references)
        }
    }

    func statistics() async throws -> RegistryStatistics {
        try await self.run {
            let rows = try await self.client.query(
                """
                SELECT
                    (SELECT COUNT(DISTINCT split_part(r.name, '/', 1)) FROM repositories r
                     WHERE EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = r.id)),
                    (SELECT COUNT(*) FROM repositories r WHERE EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = r.id)),
                    (SELECT COUNT(*) FROM tags),
                    (SELECT COALESCE(SUM(size), 0)::bigint FROM blobs)
                """, logger: self.logger
            )
            for try await (teams, artifacts, tags, storage) in rows.decode((Int64, Int64, Int64, Int64).self) {
                return RegistryStatistics(teams: Int(teams), artifacts: Int(artifacts), tags: Int(tags), storage: storage)
            }
            return RegistryStatistics(teams: 0, artifacts: 0, tags: 0, storage: 0)
        }
    }

    func teamStatistics(page: PageRequest) async throws -> Page<TeamStatistics> {
        try await self.teamStatistics(after: page.after ?? "", only: nil, limit: page.effectiveLimit)
    }

    func teamStatistics(team: String) async throws -> TeamStatistics? {
        try await self.teamStatistics(after: "", only: team, limit: 1).items.first
    }

    /// Counts and storage per team (teams after `after`, or just `only`) in one round trip.
    private func teamStatistics(after: String, only: String?, limit: Int) async throws -> Page<TeamStatistics> {
        try await self.run {
            let rows = try await self.client.query(
                """
                WITH counted AS (
                    SELECT split_part(r.name, '/', 1) COLLATE "C" AS team, COUNT(*) AS artifacts, SUM(c.tags) AS tags
                    FROM repositories r
                    CROSS JOIN LATERAL (SELECT COUNT(*) AS tags FROM tags t WHERE t.repository_id = r.id) c
                    WHERE c.tags > 0 AND split_part(r.name, '/', 1) COLLATE "C" > \(after)
                      AND (\(only)::text IS NULL OR split_part(r.name, '/', 1) = \(only))
                    GROUP BY 1 ORDER BY 1 LIMIT \(limit + 1)
                ), stored AS (
                    SELECT team, SUM(size) AS storage, COUNT(*) AS blobs FROM (
                        SELECT DISTINCT split_part(r.name, '/', 1) COLLATE "C" AS team, b.digest, b.size
                        FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                        JOIN blobs b ON b.digest = rb.digest
                        WHERE split_part(r.name, '/', 1) IN (SELECT team FROM counted)
                    ) d GROUP BY team
                )
                SELECT counted.team, counted.artifacts, counted.tags::bigint, COALESCE(stored.storage, 0)::bigint,
                       COALESCE(stored.blobs, 0)::bigint
                FROM counted LEFT JOIN stored ON stored.team = counted.team ORDER BY counted.team
                """, logger: self.logger
            )
            var teams: [TeamStatistics] = []
            for try await (team, artifacts, tags, storage, blobs) in rows.decode((String, Int64, Int64, Int64, Int64).self) {
                teams.append(TeamStatistics(team: team, artifacts: Int(artifacts), tags: Int(tags), storage: storage, blobs: Int(blobs)))
            }
            return Page(items: Array(teams.prefix(limit)), hasMore: teams.count > limit)
        }
    }

    func artifactStatistics(ofTeam team: String, page: PageRequest) async throws -> Page<ArtifactStatistics> {
        try await self.run {
            // The names of a team are the range ("team/", "team0"): "0" follows "/".
            let rows = try await self.client.query(
                """
                SELECT substr(r.name, length(\(team)) + 2), c.tags, \(unescaped: Self.millis("c.last_push")), s.storage::bigint, s.blobs
                FROM repositories r
                CROSS JOIN LATERAL (SELECT COUNT(*) AS tags, MAX(t.updated_at) AS last_push FROM tags t WHERE t.repository_id = r.id) c
                CROSS JOIN LATERAL (
                    SELECT COALESCE(SUM(b.size), 0) AS storage, COUNT(*) AS blobs
                    FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest WHERE rb.repository_id = r.id
                ) s
                WHERE r.name > \(team + "/" + (page.after ?? "")) AND r.name < \(team + "0") AND c.tags > 0
                ORDER BY r.name LIMIT \(page.effectiveLimit + 1)
                """, logger: self.logger
            )
            var items: [ArtifactStatistics] = []
            for try await (artifact, tags, lastPush, storage, blobs) in rows.decode((String, Int64, Int64, Int64, Int64).self) {
                items.append(ArtifactStatistics(
                    artifact: artifact, tags: Int(tags), storage: storage, blobs: Int(blobs), lastPushMillis: lastPush
                ))
            }
            return Page(items: Array(items.prefix(page.effectiveLimit)), hasMore: items.count > page.effectiveLimit)
        }
    }

    private static func page(_ names: [String], _ page: PageRequest) -> Page<String> {
        Page(items: Array(names.prefix(page.effectiveLimit)), hasMore: names.count > page.effectiveLimit)
    }

    // MARK: Outbox

    /// Writes one outbox row per sink for `event` (inside the tag's transaction).
    func enqueue(_ event: TagEvent, on connection: PostgresConnection) async throws {
        guard !self.outboxSinks.isEmpty else { return }
        try await connection.query(
            """
            INSERT INTO notification_outbox (sink, payload) SELECT unnest(\(self.outboxSinks)::text[]), \(event.json)
            """, logger: self.logger
        )
    }

    func claimNotifications(sink: String, limit: Int, lease: Duration) async throws -> [OutboxEntry] {
        try await self.run {
            // SKIP LOCKED: replicas claiming at the same moment take different rows.
            let rows = try await self.client.query(
                """
                UPDATE notification_outbox
                SET next_attempt_at = clock_timestamp() + \(lease.milliseconds) * interval '1 millisecond',
                    attempts = attempts + 1
                WHERE id IN (
                    SELECT id FROM notification_outbox WHERE sink = \(sink) AND next_attempt_at <= clock_timestamp()
                    ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED
                )
                RETURNING id, payload, attempts
                """, logger: self.logger
            )
            var entries: [OutboxEntry] = []
            for try await (id, payload, attempts) in rows.decode((Int64, String, Int32).self) {
                entries.append(OutboxEntry(id: id, sink: sink, payload: payload, attempts: Int(attempts)))
            }
            return entries.sorted { $0.id < $1.id }
        }
    }

    func completeNotification(id: Int64) async throws {
        try await self.run {
            _ = try await self.client.query("DELETE FROM notification_outbox WHERE id = \(id)", logger: self.logger)
        }
    }

    func postponeNotification(id: Int64, delay: Duration, error: String) async throws {
        try await self.run {
            _ = try await self.client.query(
                """
                UPDATE notification_outbox
                SET next_attempt_at = clock_timestamp() + \(delay.milliseconds) * interval '1 millisecond',
                    last_error = \(String(error.prefix(1000)))
                WHERE id = \(id)
                """, logger: self.logger
            )
        }
    }

    func notificationBacklog() async throws -> [String: Int] {
        try await self.run {
            let rows = try await self.client.query(
                "SELECT sink, COUNT(*) FROM notification_outbox GROUP BY sink", logger: self.logger
            )
            var backlog: [String: Int] = [:]
            for try await (sink, waiting) in rows.decode((String, Int64).self) { backlog[sink] = Int(waiting) }
            return backlog
        }
    }
}
