import Blob
import Contracts
import Foundation
import Logging
import Metadata
import NIOCore
import Runtime
import ServiceLifecycle
import Testing
import TestSupport

@testable import Registry

/// The layer scan is bounded by what it actually reads and inflates, not by declared sizes, and
/// reads a layer listed several times once.
@Suite struct ScmSourceScannerTests {
    @Test func aGzipBombStopsAtTheInflateBudgetAndDuplicatesAreReadOnce() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-scan-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // 64 MiB of zeros behind a tar header, gzipped to a few tens of KiB.
        let bomb = directory.appendingPathComponent("bomb.tar.gz")
        try await Command.run([
            "sh", "-c", "cd \(directory.path) && head -c 64M /dev/zero > zeros && tar cf - zeros | gzip -1 > \(bomb.path) && rm zeros",
        ])
        let bytes = ByteBuffer(bytes: try Data(contentsOf: bomb))
        let logger = Logger(label: "test")
        let blobs = try await BlobService.filesystem(directory: directory.path, logger: logger)
        let metadata = try await MetadataService.sqlite(
            path: directory.appendingPathComponent("metadata.sqlite").path, settings: TagSettings(), logger: logger
        )
        let registry = RegistryService(metadata: metadata.service, blobs: blobs)
        let repository = RepositoryName("team/app")!
        let session = try await blobs.startUpload(for: repository, algorithm: .sha256)
        let digest = DigestHasher.digest(of: bytes)
        _ = try await registry.completeUpload(
            session.id, in: repository, digest: digest, appending: AsyncStream { $0.yield(bytes); $0.finish() }, at: nil
        )
        let scanner = ScmSourceScanner(metadata: metadata.service, blobs: blobs, inflatedLimit: 1 << 20, logger: logger)
        let layer = Descriptor(mediaType: MediaType.ociLayerGzip, digest: digest, size: 1)
        let document = ManifestDocument(
            mediaType: MediaType.ociManifest, blobs: [digest], manifests: [], subject: nil, artifactType: nil,
            annotations: nil, layers: [layer, layer, layer]
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await scanner.run() }
            scanner.enqueue(repository, manifest: DigestHasher.digest(of: ByteBuffer(string: "m")), document: document, client: "c")
            for _ in 0..<100 where scanner.completed == 0 { try await Task.sleep(for: .milliseconds(50)) }
            group.cancelAll()
        }
        #expect(scanner.completed == 1)
        let spent = scanner.lastScan
        #expect(spent.stoppedByLimit)
        #expect(spent.inflated <= (1 << 20) + (256 << 10), "inflated \(spent.inflated) bytes")
        #expect(spent.read <= Int64(bytes.readableBytes), "the layer was read once")
        try await metadata.close()
    }

    /// One client's images wait at most `perClientLimit` at a time: others still get in.
    @Test func oneClientCannotFillTheQueue() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-scan-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let logger = Logger(label: "test")
        let blobs = try await BlobService.filesystem(directory: directory.path, logger: logger)
        let metadata = try await MetadataService.sqlite(
            path: directory.appendingPathComponent("metadata.sqlite").path, settings: TagSettings(), logger: logger
        )
        // Not running: everything enqueued waits.
        let scanner = ScmSourceScanner(metadata: metadata.service, blobs: blobs, logger: logger)
        let layer = Descriptor(mediaType: MediaType.ociLayerGzip, digest: DigestHasher.digest(of: ByteBuffer(string: "l")), size: 1)
        let document = ManifestDocument(
            mediaType: MediaType.ociManifest, blobs: [], manifests: [], subject: nil, artifactType: nil, annotations: nil, layers: [layer]
        )
        for index in 0..<100 {
            scanner.enqueue(RepositoryName("team/app")!, manifest: DigestHasher.digest(of: ByteBuffer(string: "a\(index)")), document: document, client: "flood")
        }
        scanner.enqueue(RepositoryName("team/app")!, manifest: DigestHasher.digest(of: ByteBuffer(string: "b")), document: document, client: "other")
        #expect(scanner.waiting(for: "flood") == ScmSourceScanner.perClientLimit)
        #expect(scanner.waiting(for: "other") == 1)
        try await metadata.close()
    }
}
