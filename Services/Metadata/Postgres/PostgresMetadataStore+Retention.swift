import Contracts
import Logging
import PostgresNIO

/// Retention's deletions on PostgreSQL: the tag row is locked `FOR UPDATE` and compared with what
/// retention decided on; the manifest row is taken `FOR UPDATE SKIP LOCKED`, so a push holding it
/// (an index listing it, a tag being set) keeps it, and retention never waits for a push.
extension PostgresMetadataStore {
    func expireTag(_ tag: Contracts.Tag, in repository: RepositoryName, naming digest: Digest, reason: String, rules: TagRules)
        async throws -> Bool
    {
        let logger = self.logger
        let key = digest.description
        return try await self.transaction { connection in
            guard let id = try await Self.repositoryID(repository, on: connection, logger: logger) else { return false }
            let rows = try await connection.query(
                "SELECT manifest_digest FROM tags WHERE repository_id = \(id) AND name = \(tag.value) FOR UPDATE", logger: logger
            )
            var current: Digest?
            for try await value in rows.decode(String.self) { current = Digest(value) }
            guard let current, current == digest else { return false }
            var event = try rules.delete(tag, in: repository, current: current)
            event.reason = reason
            try await connection.query("DELETE FROM tags WHERE repository_id = \(id) AND name = \(tag.value)", logger: logger)
            try await self.enqueue(event, on: connection)
            if try await Self.exists(
                "SELECT 1 FROM manifests WHERE repository_id = \(id) AND digest = \(key) FOR UPDATE SKIP LOCKED",
                on: connection, logger: logger
            ) {
                if try await Self.isUnkept(key, repositoryID: id, on: connection, logger: logger) {
                    try await Self.removeManifest(key, repositoryID: id, queueAt: nil, on: connection, logger: logger)
                }
            } else {
                // Held by a push or a review: the collector decides it later.
                try await Self.queueForReview(key, repositoryID: id, on: connection, logger: logger)
            }
            return true
        }
    }

    func expireManifest(_ digest: Digest, in repository: RepositoryName, pushedBefore cutoff: Int64, reason: String)
        async throws -> Bool
    {
        let logger = self.logger
        let key = digest.description
        return try await self.transaction { connection in
            guard let id = try await Self.repositoryID(repository, on: connection, logger: logger),
                  try await Self.exists(
                      "SELECT 1 FROM manifests WHERE repository_id = \(id) AND digest = \(key) FOR UPDATE SKIP LOCKED",
                      on: connection, logger: logger
                  ),
                  try await Self.isUnkept(key, repositoryID: id, pushedBefore: cutoff, on: connection, logger: logger)
            else { return false }
            try await Self.removeManifest(key, repositoryID: id, queueAt: nil, on: connection, logger: logger)
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
        try await self.run {
            let rows = try await self.client.query(
                """
                SELECT m.digest, (extract(epoch FROM m.created_at) * 1000)::bigint, COALESCE(m.total_size, m.size)
                FROM manifests m JOIN repositories r ON r.id = m.repository_id
                WHERE r.name = \(repository.value) AND m.created_at < to_timestamp(\(cutoff)::bigint / 1000.0)
                  AND (\(page.after)::text IS NULL OR m.digest > \(page.after))
                  AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest)
                  AND NOT EXISTS (
                      SELECT 1 FROM manifest_references x WHERE x.repository_id = m.repository_id AND x.referenced_digest = m.digest
                  )
                  AND (m.subject IS NULL OR NOT EXISTS (
                      SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject
                  ))
                ORDER BY m.digest LIMIT \(page.effectiveLimit + 1)
                """, logger: self.logger
            )
            var items: [UntaggedManifest] = []
            for try await (digest, created, size) in rows.decode((String, Int64, Int64).self) {
                if let digest = Digest(digest) { items.append(UntaggedManifest(digest: digest, pushedMillis: created, totalSize: size)) }
            }
            return Page(items: Array(items.prefix(page.effectiveLimit)), hasMore: items.count > page.effectiveLimit)
        }
    }

    func recordPulls(_ pulls: [PullRecord]) async throws {
        guard !pulls.isEmpty else { return }
        // One statement for the batch; rows already marked later are not rewritten.
        try await self.run {
            _ = try await self.client.query(
                """
                UPDATE tags t SET pulled_at = p.millis
                FROM unnest(\(pulls.map(\.repository.value))::text[], \(pulls.map(\.digest.description))::text[],
                            \(pulls.map(\.millis))::bigint[]) AS p(repository, digest, millis)
                JOIN repositories r ON r.name = p.repository
                WHERE t.repository_id = r.id AND t.manifest_digest = p.digest AND (t.pulled_at IS NULL OR t.pulled_at < p.millis)
                """, logger: self.logger
            )
        }
    }
}

extension PostgresMetadataStore {
    func unknownLocations(_ locations: [String]) async throws -> [String] {
        guard !locations.isEmpty else { return [] }
        return try await self.run {
            let rows = try await self.client.query(
                """
                SELECT location FROM blobs WHERE location = ANY(\(locations)::text[])
                UNION SELECT location FROM gc_trash WHERE location = ANY(\(locations)::text[])
                """, logger: self.logger
            )
            var held = Set<String>()
            for try await location in rows.decode(String.self) { held.insert(location) }
            return locations.filter { !held.contains($0) }
        }
    }
}

extension PostgresMetadataStore {
    func lease(_ name: String, holder: String, seconds: Int) async throws -> Bool {
        try await self.run {
            let rows = try await self.client.query(
                """
                INSERT INTO leases (name, holder, expires_at)
                VALUES (\(name), \(holder), clock_timestamp() + make_interval(secs => \(seconds)))
                ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                WHERE leases.holder = EXCLUDED.holder OR leases.expires_at <= clock_timestamp()
                RETURNING holder
                """, logger: self.logger
            )
            for try await _ in rows { return true }
            return false
        }
    }
}
