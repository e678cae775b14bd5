import Contracts
import PostgresNIO

extension PostgresMetadataStore {
    func deleteTag(_ tag: Contracts.Tag, in repository: RepositoryName, rules: TagRules) async throws -> Bool {
        let logger = self.logger
        return try await self.transaction { connection in
            guard let id = try await Self.repositoryID(repository, on: connection, logger: logger) else { return false }
            let rows = try await connection.query(
                "SELECT manifest_digest FROM tags WHERE repository_id = \(id) AND name = \(tag.value) FOR UPDATE",
                logger: logger
            )
            var current: Digest?
            for try await value in rows.decode(String.self) { current = Digest(value) }
            guard let current else { return false }
            let event = try rules.delete(tag, in: repository, current: current)
            try await connection.query("DELETE FROM tags WHERE repository_id = \(id) AND name = \(tag.value)", logger: logger)
            try await self.enqueue(event, on: connection)
            return true
        }
    }

    func deleteManifest(_ digest: Digest, in repository: RepositoryName, rules: TagRules) async throws -> Bool {
        let logger = self.logger
        let key = digest.description
        return try await self.transaction { connection in
            guard let id = try await Self.repositoryID(repository, on: connection, logger: logger) else { return false }
            let exists = try await connection.query(
                "SELECT 1 FROM manifests WHERE repository_id = \(id) AND digest = \(key) FOR UPDATE", logger: logger
            )
            var found = false
            for try await _ in exists.decode(Int.self) { found = true }
            guard found else { return false }
            let tags = try await connection.query(
                "SELECT name FROM tags WHERE repository_id = \(id) AND manifest_digest = \(key) FOR UPDATE", logger: logger
            )
            var names: [String] = []
            for try await name in tags.decode(String.self) { names.append(name) }
            let events = try rules.deleteManifest(digest, in: repository, tags: names)
            // What the manifest referenced may be garbage now.
            let referenced = try await connection.query(
                """
                SELECT referenced_digest FROM manifest_references WHERE repository_id = \(id) AND manifest_digest = \(key)
                ORDER BY referenced_digest
                """,
                logger: logger
            )
            var references: [String] = []
            for try await reference in referenced.decode(String.self) { references.append(reference) }
            // Its referrers (signatures, SBOMs) go with it unless they are tagged.
            let referrers = try await connection.query(
                "SELECT digest FROM manifests WHERE repository_id = \(id) AND subject = \(key) ORDER BY digest", logger: logger
            )
            for try await referrer in referrers.decode(String.self) { references.append(referrer) }
            // In digest order (byte order, as `removeManifest` locks them): two writers of several
            // queue rows wait for each other instead of deadlocking.
            for reference in Set(references).sorted() {
                try await Self.queueForReview(reference, repositoryID: id, on: connection, logger: logger)
            }
            if let user = try await Self.firstUser(of: digest, repositoryID: id, on: connection, logger: logger) {
                throw RegistryError.inUse("manifest \(digest)", by: user, in: repository)
            }
            try await connection.query(
                "DELETE FROM tags WHERE repository_id = \(id) AND manifest_digest = \(key)", logger: logger
            )
            try await connection.query(
                "DELETE FROM manifests WHERE repository_id = \(id) AND digest = \(key)", logger: logger
            )
            for event in events {
                try await self.enqueue(event, on: connection)
            }
            return true
        }
    }

    func unlinkBlob(_ digest: Digest, from repository: RepositoryName) async throws -> Bool {
        let logger = self.logger
        return try await self.transaction { connection in
            guard let id = try await Self.repositoryID(repository, on: connection, logger: logger) else { return false }
            let linked = try await connection.query(
                """
                SELECT 1 FROM repository_blobs WHERE repository_id = \(id) AND digest = \(digest.description) FOR UPDATE
                """, logger: logger
            )
            var found = false
            for try await _ in linked.decode(Int.self) { found = true }
            guard found else { return false }
            if let user = try await Self.firstUser(of: digest, repositoryID: id, on: connection, logger: logger) {
                throw RegistryError.inUse("blob \(digest)", by: user, in: repository)
            }
            try await connection.query(
                "DELETE FROM repository_blobs WHERE repository_id = \(id) AND digest = \(digest.description)", logger: logger
            )
            try await Self.queueForReview(digest.description, repositoryID: 0, on: connection, logger: logger)
            return true
        }
    }

    /// A manifest of the repository that lists `digest` as a blob or child, if any.
    private static func firstUser(of digest: Digest, repositoryID: Int64, on connection: PostgresConnection, logger: Logger)
        async throws -> Digest?
    {
        let rows = try await connection.query(
            """
            SELECT manifest_digest FROM manifest_references
            WHERE repository_id = \(repositoryID) AND referenced_digest = \(digest.description) LIMIT 1
            """, logger: logger
        )
        for try await value in rows.decode(String.self) { return Digest(value) }
        return nil
    }
}
