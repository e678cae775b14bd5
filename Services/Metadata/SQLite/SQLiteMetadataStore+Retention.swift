import Contracts
import SQLiteNIO

/// Retention's deletions: each checks, in its write transaction, that what retention decided on
/// still holds (the tag names the same manifest; the manifest is still unkept).
extension SQLiteMetadataStore {
    func expireTag(_ tag: Tag, in repository: RepositoryName, naming digest: Digest, reason: String, rules: TagRules)
        async throws -> Bool
    {
        try await self.transaction { connection in
            guard let id = try await Self.repositoryID(repository, on: connection) else { return false }
            let rows = try await connection.query(
                "SELECT manifest_digest FROM tags WHERE repository_id = ?1 AND name = ?2", [.integer(id), .text(tag.value)]
            )
            guard let current = rows.first?.column("manifest_digest")?.string.flatMap({ Digest($0) }), current == digest
            else { return false }
            var event = try rules.delete(tag, in: repository, current: current)
            event.reason = reason
            _ = try await connection.query(
                "DELETE FROM tags WHERE repository_id = ?1 AND name = ?2", [.integer(id), .text(tag.value)]
            )
            try await self.enqueue(event, on: connection)
            // The manifest goes with its last tag unless an index or its subject keeps it.
            let key: [SQLiteData] = [.integer(id), .text(digest.description)]
            let unkept = try await connection.query(
                "SELECT 1 FROM manifests m WHERE m.repository_id = ?1 AND m.digest = ?2 AND " + Self.unkept, key
            )
            if !unkept.isEmpty {
                try await Self.removeManifest(digest.description, repositoryID: id, queueAt: Self.now, on: connection)
            }
            return true
        }
    }

    func expireManifest(_ digest: Digest, in repository: RepositoryName, pushedBefore cutoff: Int64, reason: String)
        async throws -> Bool
    {
        try await self.transaction { connection in
            guard let id = try await Self.repositoryID(repository, on: connection) else { return false }
            let unkept = try await connection.query(
                "SELECT 1 FROM manifests m WHERE m.repository_id = ?1 AND m.digest = ?2 AND m.created_at < ?3 AND " + Self.unkept,
                [.integer(id), .text(digest.description), .integer(Int(cutoff))]
            )
            guard !unkept.isEmpty else { return false }
            try await Self.removeManifest(digest.description, repositoryID: id, queueAt: Self.now, on: connection)
            try await self.enqueue(
                TagEvent(action: .deleted, repository: repository, tag: nil, digest: digest, previous: nil, pushedBy: nil, reason: reason),
                on: connection
            )
            return true
        }
    }

    func untaggedManifests(in repository: RepositoryName, pushedBefore cutoff: Int64, page: PageRequest) async throws
        -> Page<UntaggedManifest>
    {
        let rows = try await self.reader.query(
            """
            SELECT m.digest, m.created_at, COALESCE(m.total_size, m.size) AS total FROM manifests m
            JOIN repositories r ON r.id = m.repository_id
            WHERE r.name = ?1 AND m.created_at < ?2 AND (?3 IS NULL OR m.digest > ?3) AND
            """ + " " + Self.unkept + " ORDER BY m.digest LIMIT ?4",
            [
                .text(repository.value), .integer(Int(cutoff)), page.after.map { .text($0) } ?? .null,
                .integer(page.effectiveLimit + 1),
            ]
        )
        let items = rows.compactMap { row -> UntaggedManifest? in
            guard let digest = row.column("digest")?.string.flatMap({ Digest($0) }), let created = row.column("created_at")?.integer
            else { return nil }
            return UntaggedManifest(digest: digest, pushedMillis: Int64(created), totalSize: Int64(row.column("total")?.integer ?? 0))
        }
        return Page(items: Array(items.prefix(page.effectiveLimit)), hasMore: items.count > page.effectiveLimit)
    }

    func recordPulls(_ pulls: [PullRecord]) async throws {
        guard !pulls.isEmpty else { return }
        try await self.transaction { connection in
            for pull in pulls {
                _ = try await connection.query(
                    """
                    UPDATE tags SET pulled_at = ?3
                    WHERE repository_id = (SELECT id FROM repositories WHERE name = ?1) AND manifest_digest = ?2
                      AND (pulled_at IS NULL OR pulled_at < ?3)
                    """,
                    [.text(pull.repository.value), .text(pull.digest.description), .integer(Int(pull.millis))]
                )
            }
        }
    }
}

extension SQLiteMetadataStore {
    func unknownLocations(_ locations: [String]) async throws -> [String] {
        guard !locations.isEmpty else { return [] }
        let parameters = locations.indices.map { "?\($0 + 1)" }.joined(separator: ", ")
        let known = try await self.reader.query(
            "SELECT location FROM blobs WHERE location IN (\(parameters)) UNION SELECT location FROM gc_trash WHERE location IN (\(parameters))",
            locations.map { .text($0) }
        ).compactMap { $0.column("location")?.string }
        let held = Set(known)
        return locations.filter { !held.contains($0) }
    }
}

extension SQLiteMetadataStore {
    func lease(_ name: String, holder: String, seconds: Int) async throws -> Bool {
        try await self.transaction { connection in
            let rows = try await connection.query(
                """
                INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3 + ?4)
                ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                WHERE leases.holder = excluded.holder OR leases.expires_at <= ?3
                RETURNING holder
                """,
                [.text(name), .text(holder), .integer(Self.now), .integer(seconds * 1000)]
            )
            return !rows.isEmpty
        }
    }
}
