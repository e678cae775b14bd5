import Contracts
import SQLiteNIO

extension SQLiteMetadataStore {
    func deleteTag(_ tag: Tag, in repository: RepositoryName, rules: TagRules) async throws -> Bool {
        try await self.transaction { connection in
            guard let id = try await Self.repositoryID(repository, on: connection) else { return false }
            let rows = try await connection.query(
                "SELECT manifest_digest FROM tags WHERE repository_id = ?1 AND name = ?2", [.integer(id), .text(tag.value)]
            )
            guard let current = rows.first?.column("manifest_digest")?.string.flatMap({ Digest($0) }) else { return false }
            let event = try rules.delete(tag, in: repository, current: current)
            _ = try await connection.query(
                "DELETE FROM tags WHERE repository_id = ?1 AND name = ?2", [.integer(id), .text(tag.value)]
            )
            try await self.enqueue(event, on: connection)
            return true
        }
    }

    func deleteManifest(_ digest: Digest, in repository: RepositoryName, rules: TagRules) async throws -> Bool {
        try await self.transaction { connection in
            guard let id = try await Self.repositoryID(repository, on: connection) else { return false }
            let key: [SQLiteData] = [.integer(id), .text(digest.description)]
            let exists = try await connection.query("SELECT 1 FROM manifests WHERE repository_id = ?1 AND digest = ?2", key)
            guard !exists.isEmpty else { return false }
            let tags = try await connection.query(
                "SELECT name FROM tags WHERE repository_id = ?1 AND manifest_digest = ?2", key
            ).compactMap { $0.column("name")?.string }
            let events = try rules.deleteManifest(digest, in: repository, tags: tags)
            // What the manifest referenced may be garbage now.
            let referenced = try await connection.query(
                "SELECT referenced_digest FROM manifest_references WHERE repository_id = ?1 AND manifest_digest = ?2", key
            ).compactMap { $0.column("referenced_digest")?.string }
            // Its referrers (signatures, SBOMs) go with it unless they are tagged.
            let referrers = try await connection.query(
                "SELECT digest FROM manifests WHERE repository_id = ?1 AND subject = ?2", key
            ).compactMap { $0.column("digest")?.string }
            for reference in referenced + referrers {
                try await Self.queueForReview(reference, repositoryID: id, at: Self.now, on: connection)
            }
            if let user = try await Self.firstUser(of: digest, repositoryID: id, on: connection) {
                throw RegistryError.inUse("manifest \(digest)", by: user, in: repository)
            }
            _ = try await connection.query("DELETE FROM tags WHERE repository_id = ?1 AND manifest_digest = ?2", key)
            _ = try await connection.query(
                "DELETE FROM manifest_references WHERE repository_id = ?1 AND manifest_digest = ?2", key
            )
            _ = try await connection.query("DELETE FROM manifests WHERE repository_id = ?1 AND digest = ?2", key)
            for event in events {
                try await self.enqueue(event, on: connection)
            }
            return true
        }
    }

    func unlinkBlob(_ digest: Digest, from repository: RepositoryName) async throws -> Bool {
        try await self.transaction { connection in
            guard let id = try await Self.repositoryID(repository, on: connection) else { return false }
            let key: [SQLiteData] = [.integer(id), .text(digest.description)]
            let linked = try await connection.query(
                "SELECT 1 FROM repository_blobs WHERE repository_id = ?1 AND digest = ?2", key
            )
            guard !linked.isEmpty else { return false }
            if let user = try await Self.firstUser(of: digest, repositoryID: id, on: connection) {
                throw RegistryError.inUse("blob \(digest)", by: user, in: repository)
            }
            _ = try await connection.query("DELETE FROM repository_blobs WHERE repository_id = ?1 AND digest = ?2", key)
            try await Self.queueForReview(digest.description, repositoryID: 0, at: Self.now, on: connection)
            return true
        }
    }

    /// A manifest of the repository that lists `digest` as a blob or child, if any.
    private static func firstUser(of digest: Digest, repositoryID: Int, on connection: SQLiteConnection) async throws
        -> Digest?
    {
        let rows = try await connection.query(
            """
            SELECT manifest_digest FROM manifest_references
            WHERE repository_id = ?1 AND referenced_digest = ?2 LIMIT 1
            """,
            [.integer(repositoryID), .text(digest.description)]
        )
        return rows.first?.column("manifest_digest")?.string.flatMap { Digest($0) }
    }
}
