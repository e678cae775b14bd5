import Contracts
import SQLiteNIO

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension SQLiteMetadataStore {
    func referrers(of subject: Digest, in repository: RepositoryName, artifactType: String?, page: PageRequest)
        async throws -> Page<Descriptor>
    {
        let rows = try await self.reader.query(
            """
            SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations
            FROM manifests m JOIN repositories r ON r.id = m.repository_id
            WHERE r.name = ?1 AND m.subject = ?2 AND (?3 IS NULL OR m.artifact_type = ?3) AND m.digest > ?4
            ORDER BY m.digest LIMIT ?5
            """,
            [
                .text(repository.value), .text(subject.description), artifactType.map { .text($0) } ?? .null,
                .text(page.after ?? ""), .integer(page.effectiveLimit + 1),
            ]
        )
        let descriptors = try rows.compactMap { row -> (item: Descriptor, weight: Int)? in
            guard let digest = row.column("digest")?.string.flatMap({ Digest($0) }),
                  let mediaType = row.column("media_type")?.string, let size = row.column("size")?.integer
            else { return nil }
            let json = row.column("annotations")?.string
            let annotations = try json.map { try JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
            let descriptor = Descriptor(
                mediaType: mediaType, digest: digest, size: Int64(size),
                artifactType: row.column("artifact_type")?.string, annotations: annotations
            )
            return (descriptor, json?.utf8.count ?? 0)
        }
        return Page.bounded(descriptors, limit: page.effectiveLimit, budget: Page<Descriptor>.annotationBudget)
    }
}
