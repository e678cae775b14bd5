import Contracts
import Logging
import PostgresNIO

/// Mounts and the garbage collector's review on PostgreSQL. Every decision is made under row locks
/// and read by a statement that starts after the lock was granted (each statement of a READ
/// COMMITTED transaction sees what committed before it began):
/// - a manifest PUT holds `FOR SHARE` on the links it references while it stores them; the review
///   takes `FOR UPDATE` on a link before it asks whether anything references it;
/// - a mount holds `FOR SHARE` on the blob row it links; the review takes `FOR UPDATE` on a blob row
///   before it asks whether anything links it;
/// - a link made by a push whose blob row the review deleted meanwhile fails its foreign key and is
///   made again with the pushed bytes (`linkBlob`).
extension PostgresMetadataStore {

    static func queueForReview(_ digest: String, repositoryID: Int64, on connection: PostgresConnection, logger: Logger)
        async throws
    {
        try await connection.query(
            """
            INSERT INTO gc_queue (repository_id, digest, queued_at)
            VALUES (\(repositoryID), \(digest), (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
            ON CONFLICT (repository_id, digest) DO UPDATE SET queued_at = GREATEST(gc_queue.queued_at, EXCLUDED.queued_at)
            """, logger: logger
        )
    }

    func mountBlob(_ digest: Digest, into repository: RepositoryName, from sources: [RepositoryName]?) async throws
        -> BlobRecord?
    {
        let logger = self.logger
        let names = sources?.map(\.value)
        if let names, names.isEmpty { return nil }
        return try await self.transaction { connection in
            let rows = try await connection.query(
                """
                SELECT b.size, b.location FROM blobs b WHERE b.digest = \(digest.description) AND EXISTS (
                    SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                    WHERE rb.digest = b.digest AND (\(names)::text[] IS NULL OR r.name = ANY(\(names)::text[]))
                ) FOR SHARE OF b
                """, logger: logger
            )
            var found: BlobRecord?
            for try await (size, location) in rows.decode((Int64, String).self) {
                found = BlobRecord(digest: digest, size: size, location: location)
            }
            guard let found else { return nil }
            let id = try await Self.ensureRepository(repository, on: connection, logger: logger)
            try await connection.query(
                """
                INSERT INTO repository_blobs (repository_id, digest) VALUES (\(id), \(digest.description))
                ON CONFLICT (repository_id, digest) DO UPDATE SET created_at = repository_blobs.created_at
                """, logger: logger
            )
            try await Self.queueForReview(digest.description, repositoryID: id, on: connection, logger: logger)
            return found
        }
    }

    func purgeCollected(_ locations: [String]) async throws {
        guard !locations.isEmpty else { return }
        let logger = self.logger
        try await self.run {
            _ = try await self.client.query("DELETE FROM gc_trash WHERE location = ANY(\(locations)::text[])", logger: logger)
        }
    }

    /// Each entry is reviewed in a transaction of its own, so the row locks a review takes (and a
    /// push may wait for) are held for a few statements, never for a whole batch.
    func collectGarbage(queuedBefore cutoff: Int64, limit: Int) async throws -> GarbageSweep {
        let logger = self.logger
        let candidates = try await self.run {
            let rows = try await self.client.query(
                """
                SELECT repository_id, digest, queued_at FROM gc_queue WHERE queued_at <= \(cutoff)
                ORDER BY queued_at LIMIT \(max(0, limit))
                """,
                logger: logger
            )
            var entries: [(Int64, String, Int64)] = []
            for try await entry in rows.decode((Int64, String, Int64).self) { entries.append(entry) }
            return entries
        }
        var sweep = GarbageSweep()
        for (repositoryID, digest, queuedAt) in candidates {
            let outcome = try await self.transaction { connection in
                try await self.review(repositoryID, digest, queuedAt: queuedAt, cutoff: cutoff, on: connection)
            }
            guard let outcome else { continue }
            sweep.reviewed += 1
            if outcome.manifest { sweep.manifests += 1 }
            if outcome.unlinked { sweep.unlinked += 1 }
            if let removed = outcome.removed { sweep.removed.append(removed) }
        }
        // Removed before and never confirmed deleted: hand them out again, each claimed (by one
        // replica) with its next attempt pushed back, 10 s doubling up to an hour.
        let stale = try await self.run {
            let rows = try await self.client.query(
                """
                UPDATE gc_trash SET attempts = attempts + 1,
                    trashed_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint
                        + LEAST(\(GarbageSweep.retryAfter) * power(2, LEAST(attempts, 9))::bigint, 3600000)
                WHERE location IN (
                    SELECT location FROM gc_trash
                    WHERE trashed_at <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint - \(GarbageSweep.retryAfter)
                    ORDER BY trashed_at LIMIT \(max(0, limit)) FOR UPDATE SKIP LOCKED
                ) RETURNING location, digest, size
                """, logger: logger
            )
            var blobs: [BlobRecord] = []
            for try await (location, digest, size) in rows.decode((String, String, Int64).self) {
                if let digest = Digest(digest) { blobs.append(BlobRecord(digest: digest, size: size, location: location)) }
            }
            return blobs
        }
        sweep.removed += stale
        sweep.due = try await self.run {
            let rows = try await self.client.query("SELECT 1 FROM gc_queue WHERE queued_at <= \(cutoff) LIMIT 1", logger: logger)
            for try await _ in rows { return 1 }
            return 0
        }
        if sweep.due == 0 {
            sweep.queued = try await self.run {
                let rows = try await self.client.query("SELECT count(*) FROM gc_queue", logger: logger)
                for try await count in rows.decode(Int64.self) { return Int(count) }
                return 0
            }
        }
        return sweep
    }

    /// Reviews one queue entry: nil when another review holds it, or it was postponed meanwhile.
    private func review(
        _ repositoryID: Int64, _ digest: String, queuedAt: Int64, cutoff: Int64, on connection: PostgresConnection
    ) async throws -> (manifest: Bool, unlinked: Bool, removed: BlobRecord?)? {
        let logger = self.logger
        // SKIP LOCKED: replicas reviewing at once take different entries.
        guard try await Self.exists(
            """
            DELETE FROM gc_queue WHERE (repository_id, digest) IN (
                SELECT repository_id, digest FROM gc_queue
                WHERE repository_id = \(repositoryID) AND digest = \(digest) AND queued_at <= \(cutoff)
                FOR UPDATE SKIP LOCKED
            ) RETURNING 1
            """, on: connection, logger: logger
        ) else { return nil }
        var unlinked = false
        var manifest = false
        // Row locks are taken with SKIP LOCKED, so a review never waits for a push (and never
        // deadlocks with one): a row someone holds is in use now, and its entry is queued again.
        func postpone(_ repositoryID: Int64) async throws -> (manifest: Bool, unlinked: Bool, removed: BlobRecord?) {
            try await Self.queueForReview(digest, repositoryID: repositoryID, on: connection, logger: logger)
            return (manifest, unlinked, nil)
        }
        if repositoryID != 0,
           try await Self.exists(
               "SELECT 1 FROM manifests WHERE repository_id = \(repositoryID) AND digest = \(digest)",
               on: connection, logger: logger
           )
        {
            // A tag being set or an index being pushed holds the row (a foreign key's or FOR
            // SHARE lock) until it commits: then the manifest is in use.
            guard try await Self.exists(
                """
                SELECT 1 FROM manifests WHERE repository_id = \(repositoryID) AND digest = \(digest)
                FOR UPDATE SKIP LOCKED
                """, on: connection, logger: logger
            ) else { return try await postpone(repositoryID) }
            manifest = try await self.collectManifest(digest, repositoryID: repositoryID, queuedAt: queuedAt, on: connection)
        }
        if repositoryID != 0 {
            guard try await Self.exists(
                "SELECT 1 FROM repository_blobs WHERE repository_id = \(repositoryID) AND digest = \(digest)",
                on: connection, logger: logger
            ) else { return (manifest, false, nil) }
            guard try await Self.exists(
                """
                SELECT 1 FROM repository_blobs WHERE repository_id = \(repositoryID) AND digest = \(digest)
                FOR UPDATE SKIP LOCKED
                """, on: connection, logger: logger
            ) else { return try await postpone(repositoryID) }
            guard try await !Self.exists(
                """
                SELECT 1 FROM manifest_references
                WHERE repository_id = \(repositoryID) AND referenced_digest = \(digest) LIMIT 1
                """, on: connection, logger: logger
            ) else { return (manifest, false, nil) }
            try await connection.query(
                "DELETE FROM repository_blobs WHERE repository_id = \(repositoryID) AND digest = \(digest)", logger: logger
            )
            unlinked = true
        }
        guard try await Self.exists("SELECT 1 FROM blobs WHERE digest = \(digest)", on: connection, logger: logger) else {
            return (manifest, unlinked, nil)
        }
        guard try await Self.exists(
            "SELECT 1 FROM blobs WHERE digest = \(digest) FOR UPDATE SKIP LOCKED", on: connection, logger: logger
        ) else { return try await postpone(0) }
        guard try await !Self.exists("SELECT 1 FROM repository_blobs WHERE digest = \(digest) LIMIT 1", on: connection, logger: logger)
        else { return (manifest, unlinked, nil) }
        let removed = try await connection.query("DELETE FROM blobs WHERE digest = \(digest) RETURNING size, location", logger: logger)
        var blob: BlobRecord?
        for try await (size, location) in removed.decode((Int64, String).self) {
            if let value = Digest(digest) { blob = BlobRecord(digest: value, size: size, location: location) }
        }
        if let blob {
            try await connection.query(
                """
                INSERT INTO gc_trash (location, digest, size, trashed_at, attempts)
                VALUES (\(blob.location), \(digest), \(blob.size), (extract(epoch FROM clock_timestamp()) * 1000)::bigint, 0)
                ON CONFLICT DO NOTHING
                """, logger: logger
            )
        }
        return (manifest, unlinked, blob)
    }

    /// Removes manifest `digest` (locked by the caller) if nothing keeps it: no tag, no index of
    /// the repository, no subject still there (see the SQLite store). What it referenced and its
    /// referrers are queued as of `queuedAt`.
    private func collectManifest(_ digest: String, repositoryID: Int64, queuedAt: Int64, on connection: PostgresConnection)
        async throws -> Bool
    {
        let logger = self.logger
        guard try await Self.isUnkept(digest, repositoryID: repositoryID, on: connection, logger: logger),
              let value = Digest(digest)
        else { return false }
        if let repository = try await Self.removeManifest(digest, repositoryID: repositoryID, queueAt: queuedAt, on: connection, logger: logger) {
            try await self.enqueue(TagEvent(collected: value, from: repository), on: connection)
        }
        return true
    }

    /// Whether nothing keeps the manifest: no tag, no index of its repository, no subject still there.
    static func isUnkept(
        _ digest: String, repositoryID: Int64, pushedBefore cutoff: Int64? = nil, on connection: PostgresConnection, logger: Logger
    ) async throws -> Bool {
        try await Self.exists(
            """
            SELECT 1 FROM manifests m WHERE m.repository_id = \(repositoryID) AND m.digest = \(digest)
            AND (\(cutoff)::bigint IS NULL OR m.created_at < to_timestamp(\(cutoff)::bigint / 1000.0))
            AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest)
            AND NOT EXISTS (
                SELECT 1 FROM manifest_references r WHERE r.repository_id = m.repository_id AND r.referenced_digest = m.digest
            )
            AND (m.subject IS NULL OR NOT EXISTS (
                SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject
            ))
            """, on: connection, logger: logger
        )
    }

    /// Removes the manifest's rows, queueing what it referenced and its referrers as of `queueAt`
    /// (nil: now); the repository's name, nil when there was no such manifest.
    @discardableResult
    static func removeManifest(
        _ digest: String, repositoryID: Int64, queueAt: Int64?, on connection: PostgresConnection, logger: Logger
    ) async throws -> RepositoryName? {
        try await connection.query(
            """
            INSERT INTO gc_queue (repository_id, digest, queued_at)
            SELECT u.repository_id, u.digest, q.queued_at FROM (
                SELECT repository_id, referenced_digest AS digest FROM manifest_references
                WHERE repository_id = \(repositoryID) AND manifest_digest = \(digest)
                UNION SELECT repository_id, digest FROM manifests WHERE repository_id = \(repositoryID) AND subject = \(digest)
            ) u, (SELECT COALESCE(\(queueAt)::bigint, (extract(epoch FROM clock_timestamp()) * 1000)::bigint) AS queued_at) q
            -- Queue rows are locked in digest order, as every writer of several does: two of them
            -- sharing digests wait for each other instead of deadlocking.
            ORDER BY u.digest COLLATE "C"
            ON CONFLICT (repository_id, digest) DO UPDATE SET queued_at = GREATEST(gc_queue.queued_at, EXCLUDED.queued_at)
            """, logger: logger
        )
        let names = try await connection.query(
            """
            DELETE FROM manifests m USING repositories r
            WHERE m.repository_id = \(repositoryID) AND m.digest = \(digest) AND r.id = m.repository_id RETURNING r.name
            """, logger: logger
        )
        var repository: RepositoryName?
        for try await name in names.decode(String.self) { repository = RepositoryName(name) }
        return repository
    }

    /// Whether `query` returns a row.
    static func exists(_ query: PostgresQuery, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.query(query, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// A foreign key refused the statement (`23503`): here, a link whose blob row the review
    /// deleted after the statement began.
    static func isMissingBlobRow(_ error: any Error) -> Bool {
        (error as? PSQLError)?.serverInfo?[.sqlState] == "23503"
    }
}

/// What the administration reads (see the SQLite store): reads only; a review decides again.
extension PostgresMetadataStore {
    func garbageCandidates(limit: Int) async throws -> GarbageCandidates {
        let limit = max(0, limit)
        return try await self.run {
            let rows = try await self.client.query(
                """
                SELECT q.repository_id, r.name, q.digest, q.queued_at,
                    EXISTS (
                        SELECT 1 FROM manifests m WHERE m.repository_id = q.repository_id AND m.digest = q.digest
                        AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest)
                        AND NOT EXISTS (
                            SELECT 1 FROM manifest_references x
                            WHERE x.repository_id = m.repository_id AND x.referenced_digest = m.digest
                        )
                        AND (m.subject IS NULL OR NOT EXISTS (
                            SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject
                        ))
                    ),
                    (q.repository_id <> 0
                     AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository_id = q.repository_id AND rb.digest = q.digest)
                     AND NOT EXISTS (
                         SELECT 1 FROM manifest_references mr
                         WHERE mr.repository_id = q.repository_id AND mr.referenced_digest = q.digest
                     )),
                    (SELECT b.size FROM blobs b WHERE b.digest = q.digest AND NOT EXISTS (
                         SELECT 1 FROM repository_blobs rb WHERE rb.digest = q.digest AND NOT (
                             rb.repository_id = q.repository_id AND NOT EXISTS (
                                 SELECT 1 FROM manifest_references mr
                                 WHERE mr.repository_id = q.repository_id AND mr.referenced_digest = q.digest))))
                FROM gc_queue q LEFT JOIN repositories r ON r.id = q.repository_id
                ORDER BY q.queued_at, q.repository_id, q.digest LIMIT \(limit + 1)
                """, logger: self.logger
            )
            var candidates: [GarbageCandidate] = []
            var seen = 0
            for try await (repositoryID, repository, digest, queued, manifest, link, bytes) in rows.decode(
                (Int64, String?, String, Int64, Bool, Bool, Int64?).self
            ) {
                seen += 1
                guard seen <= limit else { continue }
                if manifest {
                    candidates.append(GarbageCandidate(
                        kind: "manifest", repository: repository, digest: digest, bytes: nil, queuedMillis: queued,
                        reason: "untagged, listed by no index, its subject deleted or none; its blobs and children follow"
                    ))
                }
                if link {
                    candidates.append(GarbageCandidate(
                        kind: "link", repository: repository, digest: digest, bytes: bytes, queuedMillis: queued,
                        reason: bytes == nil
                            ? "no manifest of the repository references it; other repositories keep the bytes"
                            : "no manifest of the repository references it, and no other repository links it"
                    ))
                } else if repositoryID == 0, let bytes {
                    candidates.append(GarbageCandidate(
                        kind: "blob", repository: nil, digest: digest, bytes: bytes, queuedMillis: queued, reason: "no repository links it"
                    ))
                }
            }
            return GarbageCandidates(candidates: candidates, truncated: seen > limit)
        }
    }

    func explain(_ digest: Digest) async throws -> GarbageExplanation {
        let key = digest.description
        let logger = self.logger
        return try await self.run {
            var explanation = GarbageExplanation(digest: key)
            for try await size in try await self.client.query("SELECT size FROM blobs WHERE digest = \(key)", logger: logger)
                .decode(Int64.self)
            {
                explanation.blobSize = size
            }
            for try await name in try await self.client.query(
                """
                SELECT r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                WHERE rb.digest = \(key) ORDER BY r.name LIMIT 100
                """, logger: logger
            ).decode(String.self) {
                explanation.linkedInto.append(name)
            }
            for try await (name, manifest, tags) in try await self.client.query(
                """
                SELECT r.name, mr.manifest_digest,
                    COALESCE((SELECT array_agg(t.name ORDER BY t.name) FROM tags t
                              WHERE t.repository_id = mr.repository_id AND t.manifest_digest = mr.manifest_digest), '{}')
                FROM manifest_references mr JOIN repositories r ON r.id = mr.repository_id
                WHERE mr.referenced_digest = \(key) ORDER BY r.name, mr.manifest_digest LIMIT 100
                """, logger: logger
            ).decode((String, String, [String]).self) {
                explanation.referencedBy.append(.init(repository: name, manifest: manifest, tags: tags))
            }
            for try await (name, subject, tags, indexes, present, referrers) in try await self.client.query(
                """
                SELECT r.name, m.subject,
                    COALESCE((SELECT array_agg(t.name ORDER BY t.name) FROM tags t
                              WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest), '{}'),
                    COALESCE((SELECT array_agg(x.manifest_digest ORDER BY x.manifest_digest) FROM manifest_references x
                              WHERE x.repository_id = m.repository_id AND x.referenced_digest = m.digest), '{}'),
                    EXISTS (SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject),
                    (SELECT count(*) FROM manifests f WHERE f.repository_id = m.repository_id AND f.subject = m.digest)
                FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE m.digest = \(key) ORDER BY r.name LIMIT 100
                """, logger: logger
            ).decode((String, String?, [String], [String], Bool, Int64).self) {
                explanation.manifests.append(.init(
                    repository: name, tags: tags, indexes: indexes, subject: subject, subjectPresent: present, referrers: Int(referrers)
                ))
            }
            for try await (name, queued) in try await self.client.query(
                """
                SELECT r.name, q.queued_at FROM gc_queue q LEFT JOIN repositories r ON r.id = q.repository_id
                WHERE q.digest = \(key) ORDER BY q.queued_at LIMIT 100
                """, logger: logger
            ).decode((String?, Int64).self) {
                explanation.queued.append(.init(repository: name, queuedMillis: queued))
            }
            for try await _ in try await self.client.query("SELECT 1 FROM gc_trash WHERE digest = \(key) LIMIT 1", logger: logger) {
                explanation.trashed = true
            }
            return explanation
        }
    }
}
