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
            """
            SELECT m.subject FROM manifests m WHERE m.repository_id = ?1 AND m.digest = ?2
            AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = ?1 AND t.manifest_digest = ?2)
            AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.repository_id = ?1 AND r.referenced_digest = ?2)
            AND (m.subject IS NULL
                 OR NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository_id = ?1 AND s.digest = m.subject))
            """, key
        )
        guard !unkept.isEmpty, let value = Digest(digest) else { return false }
        let queued = key + [.integer(queuedAt)]
        _ = try await connection.query(
            """
            INSERT INTO gc_queue (repository_id, digest, queued_at)
            SELECT repository_id, referenced_digest, ?3 FROM manifest_references WHERE repository_id = ?1 AND manifest_digest = ?2
            UNION SELECT repository_id, digest, ?3 FROM manifests WHERE repository_id = ?1 AND subject = ?2
            ON CONFLICT (repository_id, digest) DO UPDATE SET queued_at = max(queued_at, excluded.queued_at)
            """, queued
        )
        _ = try await connection.query("DELETE FROM manifest_references WHERE repository_id = ?1 AND manifest_digest = ?2", key)
        _ = try await connection.query("DELETE FROM manifests WHERE repository_id = ?1 AND digest = ?2", key)
        if let repository = try await connection.query("SELECT name FROM repositories WHERE id = ?1", [.integer(repositoryID)])
            .first?.column("name")?.string.flatMap({ RepositoryName($0) })
        {
            try await self.enqueue(TagEvent(collected: value, from: repository), on: connection)
        }
        return true
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
            return sweep
        }
    }
}
