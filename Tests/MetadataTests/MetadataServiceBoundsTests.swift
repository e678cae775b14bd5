import Contracts
import Foundation
import Logging
import Testing

@testable import Metadata

/// Numbers and lists from internal callers are bounded by the metadata service before a store
/// sees them.
@Suite struct MetadataServiceBoundsTests {
    @Test func hugeMountSourceListsAndReviewLimitsAreBounded() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-bounds-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let metadata = try await MetadataService.sqlite(
            path: directory.appendingPathComponent("metadata.sqlite").path, settings: TagSettings(), logger: Logger(label: "test")
        )
        let source = RepositoryName("team/source")!
        let blob = MetadataStoreConformance.blob("bounded")
        try await metadata.service.linkBlob(blob, into: source)
        // Only the first 100 named sources are looked in, however many a caller sends.
        let others = (0..<40_000).map { RepositoryName("team/x\($0)")! }
        let late = Array(others.prefix(MetadataService.mountSourceLimit)) + [source]
        #expect(try await metadata.service.mountBlob(blob.digest, into: RepositoryName("team/target")!, from: late) == nil)
        #expect(try await metadata.service.mountBlob(blob.digest, into: RepositoryName("team/target")!, from: [source] + others) == blob)
        let sweep = try await metadata.service.collectGarbage(queuedBefore: Int64.max, limit: Int.max)
        #expect(sweep.reviewed <= MetadataService.reviewLimit)
        _ = try await metadata.service.collectGarbage(queuedBefore: 0, limit: Int.min)
        try await metadata.close()
    }
}
