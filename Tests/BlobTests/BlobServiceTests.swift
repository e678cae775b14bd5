import Contracts
import Foundation
import Logging
import NIOCore
import Runtime
import Testing

@testable import Blob

/// What is particular to the filesystem driver; `StorageDriverConformanceTests` checks what every
/// driver must do.
@Suite struct BlobServiceTests {
    let repository = RepositoryName("team/app")!

    /// A fresh blob service over a temporary directory, removed afterwards.
    func withService(_ body: (BlobService, URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-blob-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let service = try await BlobService.filesystem(directory: directory.path, logger: Logger(label: "test"))
        try await body(service, directory)
    }

    @Test func digestStateIsSavedNextToTheBytes() async throws {
        try await self.withService { service, directory in
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: 0, body: StorageFixture.stream(["replica a, "]))
            // A second service over the same storage continues the session, then the first commits it.
            let other = try await BlobService.filesystem(directory: directory.path, logger: Logger(label: "test"))
            _ = try await other.appendUpload(session.id, for: self.repository, at: 11, body: StorageFixture.stream(["replica b"]))
            let saved = try #require(FileManager.default.contents(
                atPath: directory.appendingPathComponent("uploads/\(session.id)/hashstate").path
            ))
            #expect(String(decoding: saved, as: UTF8.self).contains(#""offset":20"#))
            let digest = DigestHasher.digest(of: ByteBuffer(string: "replica a, replica b"))
            let blob = try await service.commitUpload(session.id, for: self.repository, digest: digest)
            #expect(String(buffer: try await StorageFixture.readAll(service, blob)) == "replica a, replica b")
        }
    }

    @Test func staleDigestStateFallsBackToTheStoredBytes() async throws {
        try await self.withService { service, directory in
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: StorageFixture.stream(["kept"]))
            // Bytes that reached the file without their digest state (a write that failed midway).
            let data = directory.appendingPathComponent("uploads/\(session.id)/data")
            let handle = try FileHandle(forWritingTo: data)
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(" and more".utf8))
            try handle.close()
            let digest = DigestHasher.digest(of: ByteBuffer(string: "kept and more"))
            let blob = try await service.commitUpload(session.id, for: self.repository, digest: digest)
            #expect(blob.size == 13)
        }
    }

    @Test func resumableDigestsMatchSwiftCrypto() {
        for algorithm in Digest.Algorithm.allCases {
            var resumable = ResumableHasher(algorithm)
            let bytes = ByteBuffer(bytes: (0..<100_000).map { UInt8($0 % 253) })
            resumable.update(bytes.getSlice(at: 0, length: 40_000)!)
            var restored = ResumableHasher(algorithm: algorithm, state: resumable.state)!
            restored.update(bytes.getSlice(at: 40_000, length: 60_000)!)
            #expect(restored.finalize() == DigestHasher.digest(of: bytes, algorithm: algorithm))
        }
        #expect(ResumableHasher(algorithm: .sha256, state: [1, 2, 3]) == nil)
    }

}
