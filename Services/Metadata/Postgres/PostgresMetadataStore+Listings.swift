import Contracts
import PostgresNIO

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension PostgresMetadataStore {
    func tags(in repository: RepositoryName, page: PageRequest) async throws -> Page<String>? {
        let logger = self.logger
        return try await self.run {
            try await self.client.withConnection { connection in
                guard let id = try await Self.repositoryID(repository, on: connection, logger: logger) else { return nil }
                let rows = try await connection.query(
                    """
                    SELECT name FROM tags WHERE repository_id = \(id) AND name > \(page.after ?? "")
                    ORDER BY name LIMIT \(page.effectiveLimit + 1)
                    """, logger: logger
                )
                var names: [String] = []
                for try await name in rows.decode(String.self) { names.append(name) }
                return Page(items: Array(names.prefix(page.effectiveLimit)), hasMore: names.count > page.effectiveLimit)
            }
        }
    }

    func repositories(page: PageRequest) async throws -> Page<String> {
        try await self.run {
            let rows = try await self.client.query(
                """
                SELECT name FROM repositories WHERE name > \(page.after ?? "")
                ORDER BY name LIMIT \(page.effectiveLimit + 1)
                """, logger: self.logger
            )
            var names: [String] = []
            for try await name in rows.decode(String.self) { names.append(name) }
            return Page(items: Array(names.prefix(page.effectiveLimit)), hasMore: names.count > page.effectiveLimit)
        }
    }

    func referrers(of subject: Digest, in repository: RepositoryName, artifactType: String?, page: PageRequest)
        async throws -> Page<Descriptor>
    {
        try await self.run {
            let rows = try await self.client.query(
                """
                SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations::text
                FROM manifests m JOIN repositories r ON r.id = m.repository_id
                WHERE r.name = \(repository.value) AND m.subject = \(subject.description)
                  AND (\(artifactType)::text IS NULL OR m.artifact_type = \(artifactType))
                  AND m.digest > \(page.after ?? "")
                ORDER BY m.digest LIMIT \(page.effectiveLimit + 1)
                """, logger: self.logger
            )
            var descriptors: [(item: Descriptor, weight: Int)] = []
            for try await (digest, mediaType, size, type, annotations) in rows.decode(
                (String, String, Int64, String?, String?).self
            ) {
                guard let digest = Digest(digest) else { continue }
                descriptors.append((Descriptor(
                    mediaType: mediaType, digest: digest, size: size, artifactType: type,
                    annotations: try annotations.map { try JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
                ), annotations?.utf8.count ?? 0))
            }
            return Page.bounded(descriptors, limit: page.effectiveLimit, budget: Page<Descriptor>.annotationBudget)
        }
    }
}
