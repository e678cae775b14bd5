import Contracts
import Foundation
import Logging
import NIOCore
import Prometheus
import Runtime
import SystemPackage
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

    /// The closing request with its last chunk checks the session once, appends and seals in one
    /// hold of the session's lock, and carries the digest of its bytes to the commit in memory: no
    /// second status read, no digest state written and read back, no re-read of the bytes.
    @Test func theClosingRequestChecksTheSessionOnce() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-blob-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let base = FilesystemDriver(root: .init(directory.path))
        try await base.prepare()
        let name = "test-\(UUID())"
        let service = BlobService(driver: MeasuredStorageDriver(base: base, name: name), logger: Logger(label: "test"))
        let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
        _ = try await service.appendUpload(session.id, for: self.repository, at: 0, body: StorageFixture.stream(["first, "]))
        let digest = DigestHasher.digest(of: ByteBuffer(string: "first, last"))
        let blob = try await service.commitUpload(
            session.id, for: self.repository, digest: digest, appending: StorageFixture.stream(["last"]), at: 7
        )
        #expect(String(buffer: try await StorageFixture.readAll(service, blob)) == "first, last")
        #expect(Self.operations(of: name) == [
            "append_upload": 1, "append_and_seal": 1, "commit_upload": 1, "create_upload": 1, "load_hash_state": 1, "read": 1,
            "upload_status": 2,
        ])
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("uploads/\(session.id)").path))

        // A wrong digest on the closing request: refused, and the session is gone.
        let second = try await service.startUpload(for: self.repository, algorithm: .sha256)
        await #expect(throws: RegistryError.self) {
            _ = try await service.commitUpload(second.id, for: self.repository, digest: digest, appending: StorageFixture.stream(["other"]), at: 0)
        }
        await #expect(throws: RegistryError.self) { _ = try await service.uploadStatus(second.id, for: self.repository) }
    }

    /// Storage operations counted for the driver named `name` (`pierone_storage_operation_duration_seconds`).
    static func operations(of name: String) -> [String: Int] {
        var buffer: [UInt8] = []
        ServiceMetrics.registry.emit(into: &buffer)
        var counts: [String: Int] = [:]
        let prefix = "pierone_storage_operation_duration_seconds_count{driver=\"\(name)\",operation=\""
        for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n") where line.hasPrefix(prefix) {
            let rest = line.dropFirst(prefix.count)
            guard let quote = rest.firstIndex(of: "\""), let count = Int(rest.split(separator: " ").last ?? "") else { continue }
            counts[String(rest[..<quote])] = count
        }
        return counts
    }

    /// A session whose `info.json` went away between two steps of a read (committed or removed by
    /// another replica) is unknown, not a failure, and the expiry sweep goes on past it.
    @Test func aSessionWhoseInfoVanishedIsUnknown() async throws {
        try await self.withService { service, directory in
            let gone = try await service.startUpload(for: self.repository, algorithm: .sha256)
            let kept = try await service.startUpload(for: self.repository, algorithm: .sha256)
            try FileManager.default.removeItem(at: directory.appendingPathComponent("uploads/\(gone.id)/info.json"))
            do {
                _ = try await service.uploadStatus(gone.id, for: self.repository)
                Issue.record("a vanished session answered")
            } catch let error as RegistryError {
                #expect(error.code == .blobUploadUnknown)
            }
            #expect(try await service.expireUploads(olderThan: -1) == 1)
            await #expect(throws: RegistryError.self) { _ = try await service.uploadStatus(kept.id, for: self.repository) }
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
