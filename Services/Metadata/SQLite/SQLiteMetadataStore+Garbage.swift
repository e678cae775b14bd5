import Contracts
import SQLiteNIO

/// Mounts and the garbage collector's review, each in one write transaction: SQLite's single
/// writer makes every check and the change it leads to one step, so a push that links or
/// references a blob and a review that removes it never interleave.
extension SQLiteMetadataStore {
    /// Queues `digest` of the repository `repositoryID` (0: the blob row itself) for review,
    /// postponing an entry already queued.
    static func queueForReview(_ digest: String, repositoryID: Int, at millis: Int, on connection: SQLiteConnection)
        async throws
    {
        _ = try await connection.query(
            """
            INSERT INTO gc_queue (repository_id, digest, queued_at) VALUES (?1, ?2, ?3)
            ON CONFLICT (repository_id, digest) DO UPDATE SET queued_at = max(queued_at, excluded.queued_at)
            """,
            [.integer(repositoryID), .text(digest), .integer(millis)]
        )
    }

    func mountBlob(_ digest: Digest, into repository: RepositoryName, from sources: [RepositoryName]?) async throws
        -> BlobRecord?
    {
        try await self.transaction { connection in
            var sql = """
                SELECT b.size, b.location FROM blobs b WHERE b.digest = ?1 AND EXISTS (
                    SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                    WHERE rb.digest = b.digest
                """
            var bindings: [SQLiteData] = [.text(digest.description)]
            if let sources {
                guard !sources.isEmpty else { return nil }
                sql += " AND r.name IN (" + sources.indices.map { "?\($0 + 2)" }.joined(separator: ", ") + ")"
                bindings += sources.map { .text($0.value) }
            }
            let rows = try await connection.query(sql + ")", bindings)
            guard let row = rows.first, let size = row.column("size")?.integer, let location = row.column("location")?.string
            else { return nil }
            let repositoryID = try await Self.ensureRepository(repository, on: connection)
            _ = try await connection.query(
                "INSERT OR IGNORE INTO repository_blobs (repository_id, digest, created_at) VALUES (?1, ?2, ?3)",
                [.integer(repositoryID), .text(digest.description), .integer(Self.now)]
            )
            try await Self.queueForReview(digest.description, repositoryID: repositoryID, at: Self.now, on: connection)
            return BlobRecord(digest: digest, size: Int64(size), location: location)
        }
    }

    func purgeCollected(_ locations: [String]) async throws {
        guard !locations.isEmpty else { return }
        try await self.transaction { connection in
            for location in locations {
                _ = try await connection.query("DELETE FROM gc_trash WHERE location = ?1", [.text(location)])
            }
        }
    }

    /// Removes manifest `digest` of the repository if nothing keeps it: no tag names it, no index
    /// of the repository lists it, and it is not a referrer of a manifest still there. Only the
    /// manifests of a deleted index or subject are queued, so an untagged image pushed on its own
    /// stays until a retention rule deletes it. What it referenced and its referrers are queued as
    /// of `queuedAt`, so a whole graph goes within one grace period.
    private func collectManifest(_ digest: String, repositoryID: Int, queuedAt: Int, on connection: SQLiteConnection)
        async throws -> Bool
    {
        let key: [SQLiteData] = [.integer(repositoryID), .text(digest)]
        let unkept = try await connection.query(
            "SELECT 1 FROM manifests m WHERE m.repository_id = ?1 AND m.digest = ?2 AND " + Self.unkept, key
        )
        guard !unkept.isEmpty, let value = Digest(digest) else { return false }
        try await Self.removeManifest(digest, repositoryID: repositoryID, queueAt: queuedAt, on: connection)
        if let repository = try await connection.query("SELECT name FROM repositories WHERE id = ?1", [.integer(repositoryID)])
            .first?.column("name")?.string.flatMap({ RepositoryName($0) })
        {
            try await self.enqueue(TagEvent(collected: value, from: repository), on: connection)
        }
        return true
    }

    /// What keeps manifest `m`: a tag, an index of its repository, its subject still there.
    static let unkept = """
        NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest)
        AND NOT EXISTS (
            SELECT 1 FROM manifest_references r WHERE r.repository_id = m.repository_id AND r.referenced_digest = m.digest
        )
        AND (m.subject IS NULL
             OR NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject))
        """

    /// Removes the manifest's rows, queueing what it referenced and its referrers as of `queueAt`.
    static func removeManifest(_ digest: String, repositoryID: Int, queueAt: Int, on connection: SQLiteConnection)
        async throws
    {
        let key: [SQLiteData] = [.integer(repositoryID), .text(digest)]
        _ = try await connection.query(
            """
            INSERT INTO gc_queue (repository_id, digest, queued_at)
            SELECT repository_id, referenced_digest, ?3 FROM manifest_references WHERE repository_id = ?1 AND manifest_digest = ?2
            UNION SELECT repository_id, digest, ?3 FROM manifests WHERE repository_id = ?1 AND subject = ?2
            ON CONFLICT (repository_id, digest) DO UPDATE SET queued_at = max(queued_at, excluded.queued_at)
            """, key + [.integer(queueAt)]
        )
        _ = try await connection.query("DELETE FROM manifest_references WHERE repository_id = ?1 AND manifest_digest = ?2", key)
        _ = try await connection.query("DELETE FROM manifests WHERE repository_id = ?1 AND digest = ?2", key)
    }

    func collectGarbage(queuedBefore cutoff: Int64, limit: Int) async throws -> GarbageSweep {
        try await self.transaction { connection in
            let due = try await connection.query(
                "SELECT repository_id, digest, queued_at FROM gc_queue WHERE queued_at <= ?1 ORDER BY queued_at LIMIT ?2",
                [.integer(Int(cutoff)), .integer(max(0, limit))]
            )
            var sweep = GarbageSweep()
            for entry in due {
                guard let repositoryID = entry.column("repository_id")?.integer, let digest = entry.column("digest")?.string,
                      let queuedAt = entry.column("queued_at")?.integer
                else { continue }
                sweep.reviewed += 1
                _ = try await connection.query(
                    "DELETE FROM gc_queue WHERE repository_id = ?1 AND digest = ?2", [.integer(repositoryID), .text(digest)]
                )
                if repositoryID != 0,
                   try await self.collectManifest(digest, repositoryID: repositoryID, queuedAt: queuedAt, on: connection)
                {
                    sweep.manifests += 1
                }
                if repositoryID != 0 {
                    // A link no manifest of its repository references.
                    let referenced = try await connection.query(
                        "SELECT 1 FROM manifest_references WHERE repository_id = ?1 AND referenced_digest = ?2 LIMIT 1",
                        [.integer(repositoryID), .text(digest)]
                    )
                    guard referenced.isEmpty else { continue }
                    let unlinked = try await connection.query(
                        "DELETE FROM repository_blobs WHERE repository_id = ?1 AND digest = ?2 RETURNING digest",
                        [.integer(repositoryID), .text(digest)]
                    )
                    guard !unlinked.isEmpty else { continue }
                    sweep.unlinked += 1
                }
                // A blob row no repository links (a manifest references only blobs linked into its
                // repository, and a referenced link is never removed): the row goes now, its bytes
                // after this commits.
                let removed = try await connection.query(
                    """
                    DELETE FROM blobs WHERE digest = ?1 AND NOT EXISTS (SELECT 1 FROM repository_blobs WHERE digest = ?1)
                    RETURNING size, location
                    """,
                    [.text(digest)]
                )
                if let row = removed.first, let size = row.column("size")?.integer, let location = row.column("location")?.string,
                   let value = Digest(digest)
                {
                    _ = try await connection.query(
                        "INSERT OR IGNORE INTO gc_trash (location, digest, size, trashed_at, attempts) VALUES (?1, ?2, ?3, ?4, 0)",
                        [.text(location), .text(digest), .integer(size), .integer(Self.now)]
                    )
                    sweep.removed.append(BlobRecord(digest: value, size: Int64(size), location: location))
                }
            }
            // Removed before and never confirmed deleted: hand them out again, each with its next
            // attempt pushed back, 10 s doubling up to an hour.
            let stale = try await connection.query(
                """
                UPDATE gc_trash SET attempts = attempts + 1,
                    trashed_at = ?1 + min(?3 * (1 << min(attempts, 9)), 3600000)
                WHERE location IN (SELECT location FROM gc_trash WHERE trashed_at <= ?1 - ?3 ORDER BY trashed_at LIMIT ?2)
                RETURNING location, digest, size
                """,
                [.integer(Self.now), .integer(max(0, limit)), .integer(Int(GarbageSweep.retryAfter))]
            )
            for row in stale {
                guard let location = row.column("location")?.string, let digest = row.column("digest")?.string.flatMap({ Digest($0) }),
                      let size = row.column("size")?.integer
                else { continue }
                sweep.removed.append(BlobRecord(digest: digest, size: Int64(size), location: location))
            }
            let left = try await connection.query(
                "SELECT 1 FROM gc_queue WHERE queued_at <= ?1 LIMIT 1", [.integer(Int(cutoff))]
            )
            sweep.due = left.isEmpty ? 0 : 1
            if sweep.due == 0 {
                sweep.queued = try await connection.query("SELECT count(*) AS n FROM gc_queue").first?.column("n")?.integer
            }
            return sweep
        }
    }
}

/// What the administration reads: the queue with what each review would remove, and everything
/// that keeps one digest. Reads only (the reader connection); a review decides again.
extension SQLiteMetadataStore {
    func garbageCandidates(limit: Int) async throws -> GarbageCandidates {
        let limit = max(0, limit)
        // A link is removable when no manifest of its repository references it; the blob row
        // goes when every link of the digest is removable by this entry (or there is none).
        let rows = try await self.reader.query(
            """
            SELECT q.repository_id, r.name, q.digest, q.queued_at,
                EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = q.repository_id AND m.digest = q.digest AND
            """ + " " + Self.unkept + """
                ) AS manifest,
                (q.repository_id <> 0
                 AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository_id = q.repository_id AND rb.digest = q.digest)
                 AND NOT EXISTS (
                     SELECT 1 FROM manifest_references mr WHERE mr.repository_id = q.repository_id AND mr.referenced_digest = q.digest
                 )) AS link,
                (SELECT b.size FROM blobs b WHERE b.digest = q.digest AND NOT EXISTS (
                     SELECT 1 FROM repository_blobs rb WHERE rb.digest = q.digest AND NOT (
                         rb.repository_id = q.repository_id AND NOT EXISTS (
                             SELECT 1 FROM manifest_references mr
                             WHERE mr.repository_id = q.repository_id AND mr.referenced_digest = q.digest)))
                ) AS bytes
            FROM gc_queue q LEFT JOIN repositories r ON r.id = q.repository_id
            ORDER BY q.queued_at, q.repository_id, q.digest LIMIT ?1
            """,
            [.integer(limit + 1)]
        )
        var candidates: [GarbageCandidate] = []
        for row in rows.prefix(limit) {
            guard let digest = row.column("digest")?.string, let queued = row.column("queued_at")?.integer else { continue }
            let repository = row.column("name")?.string
            let bytes = row.column("bytes")?.integer.map(Int64.init)
            if row.column("manifest")?.integer == 1 {
                candidates.append(GarbageCandidate(
                    kind: "manifest", repository: repository, digest: digest, bytes: nil, queuedMillis: Int64(queued),
                    reason: "untagged, listed by no index, its subject deleted or none; its blobs and children follow"
                ))
            }
            if row.column("link")?.integer == 1 {
                candidates.append(GarbageCandidate(
                    kind: "link", repository: repository, digest: digest, bytes: bytes, queuedMillis: Int64(queued),
                    reason: bytes == nil
                        ? "no manifest of the repository references it; other repositories keep the bytes"
                        : "no manifest of the repository references it, and no other repository links it"
                ))
            } else if row.column("repository_id")?.integer == 0, let bytes {
                candidates.append(GarbageCandidate(
                    kind: "blob", repository: nil, digest: digest, bytes: bytes, queuedMillis: Int64(queued),
                    reason: "no repository links it"
                ))
            }
        }
        return GarbageCandidates(candidates: candidates, truncated: rows.count > limit)
    }

    func explain(_ digest: Digest) async throws -> GarbageExplanation {
        let key: [SQLiteData] = [.text(digest.description)]
        var explanation = GarbageExplanation(digest: digest.description)
        let reader = self.reader
        explanation.blobSize = try await reader.query("SELECT size FROM blobs WHERE digest = ?1", key)
            .first?.column("size")?.integer.map(Int64.init)
        explanation.linkedInto = try await reader.query(
            """
            SELECT r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
            WHERE rb.digest = ?1 ORDER BY r.name LIMIT 100
            """, key
        ).compactMap { $0.column("name")?.string }
        for row in try await reader.query(
            """
            SELECT r.name, mr.manifest_digest,
                (SELECT group_concat(t.name, ',') FROM tags t
                 WHERE t.repository_id = mr.repository_id AND t.manifest_digest = mr.manifest_digest) AS tags
            FROM manifest_references mr JOIN repositories r ON r.id = mr.repository_id
            WHERE mr.referenced_digest = ?1 ORDER BY r.name, mr.manifest_digest LIMIT 100
            """, key
        ) {
            guard let name = row.column("name")?.string, let manifest = row.column("manifest_digest")?.string else { continue }
            let tags = row.column("tags")?.string.map { $0.split(separator: ",").map(String.init).sorted() } ?? []
            explanation.referencedBy.append(.init(repository: name, manifest: manifest, tags: tags))
        }
        for row in try await reader.query(
            """
            SELECT r.name, m.subject,
                (SELECT group_concat(t.name, ',') FROM tags t WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest)
                    AS tags,
                (SELECT group_concat(x.manifest_digest, ',') FROM manifest_references x
                 WHERE x.repository_id = m.repository_id AND x.referenced_digest = m.digest) AS indexes,
                EXISTS (SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject) AS present,
                (SELECT count(*) FROM manifests f WHERE f.repository_id = m.repository_id AND f.subject = m.digest) AS referrers
            FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE m.digest = ?1 ORDER BY r.name LIMIT 100
            """, key
        ) {
            guard let name = row.column("name")?.string else { continue }
            func list(_ column: String) -> [String] {
                row.column(column)?.string.map { $0.split(separator: ",").map(String.init).sorted() } ?? []
            }
            explanation.manifests.append(.init(
                repository: name, tags: list("tags"), indexes: list("indexes"), subject: row.column("subject")?.string,
                subjectPresent: row.column("present")?.integer == 1, referrers: row.column("referrers")?.integer ?? 0
            ))
        }
        explanation.queued = try await reader.query(
            """
            SELECT r.name, q.queued_at FROM gc_queue q LEFT JOIN repositories r ON r.id = q.repository_id
            WHERE q.digest = ?1 ORDER BY q.queued_at LIMIT 100
            """, key
        ).compactMap { row in
            row.column("queued_at")?.integer.map { .init(repository: row.column("name")?.string, queuedMillis: Int64($0)) }
        }
        explanation.trashed = try await !reader.query("SELECT 1 FROM gc_trash WHERE digest = ?1 LIMIT 1", key).isEmpty
        return explanation
    }
}
