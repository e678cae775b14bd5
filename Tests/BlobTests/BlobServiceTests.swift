import Contracts
import Foundation
import Logging
import NIOCore
import Runtime
import Testing

@testable import Blob

@Suite struct BlobServiceTests {
    let repository = RepositoryName("team/app")!

    /// A fresh blob service over a temporary directory, removed afterwards.
    func withService(_ body: (BlobService, URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-blob-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let service = try await BlobService.filesystem(directory: directory.path, logger: Logger(label: "test"))
        try await body(service, directory)
    }

    static func stream(_ chunks: [String]) -> AsyncStream<ByteBuffer> {
        AsyncStream { continuation in
            for chunk in chunks { continuation.yield(ByteBuffer(string: chunk)) }
            continuation.finish()
        }
    }

    static func readAll(_ service: BlobService, _ blob: BlobRecord, range: ClosedRange<Int64>? = nil) async throws -> String {
        var collected = ByteBuffer()
        try await service.read(blob, range: range) { chunk in
            var chunk = chunk
            collected.writeBuffer(&chunk)
        }
        return String(buffer: collected)
    }

    static func files(under directory: URL, _ subdirectory: String) -> [String] {
        let root = directory.appendingPathComponent(subdirectory)
        let enumerator = FileManager.default.enumerator(atPath: root.path)
        return (enumerator?.allObjects as? [String] ?? []).filter {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: root.appendingPathComponent($0).path, isDirectory: &isDirectory)
            return !isDirectory.boolValue
        }
    }

    @Test func chunksAppendAndCommitVerifiesTheDigest() async throws {
        try await self.withService { service, directory in
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            var status = try await service.appendUpload(session.id, for: self.repository, at: 0, body: Self.stream(["hello ", "wor"]))
            #expect(status.offset == 9)
            status = try await service.appendUpload(session.id, for: self.repository, at: 9, body: Self.stream(["ld"]))
            #expect(status.offset == 11)
            let digest = StreamingHasher.digest(of: ByteBuffer(string: "hello world"))
            let blob = try await service.commitUpload(session.id, for: self.repository, digest: digest)
            #expect(blob.size == 11)
            #expect(try await Self.readAll(service, blob) == "hello world")
            #expect(try await Self.readAll(service, blob, range: 6...10) == "world")
            #expect(Self.files(under: directory, "uploads").isEmpty)
            await #expect(throws: RegistryError.self) { try await service.uploadStatus(session.id, for: self.repository) }
        }
    }

    @Test func wrongDigestStoresNothing() async throws {
        try await self.withService { service, directory in
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: Self.stream(["data"]))
            let wrong = StreamingHasher.digest(of: ByteBuffer(string: "other"))
            do {
                _ = try await service.commitUpload(session.id, for: self.repository, digest: wrong)
                Issue.record("commit with a wrong digest succeeded")
            } catch let error as RegistryError {
                #expect(error.code == .digestInvalid)
            }
            #expect(Self.files(under: directory, "blobs").isEmpty)
            #expect(Self.files(under: directory, "uploads").isEmpty)
        }
    }

    @Test func outOfOrderChunkIs416() async throws {
        try await self.withService { service, _ in
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: 0, body: Self.stream(["abc"]))
            do {
                _ = try await service.appendUpload(session.id, for: self.repository, at: 5, body: Self.stream(["x"]))
                Issue.record("out-of-order chunk accepted")
            } catch let error as RegistryError {
                #expect(error.status == 416)
            }
            #expect(try await service.uploadStatus(session.id, for: self.repository).offset == 3)
        }
    }

    @Test func sessionsBelongToTheirRepository() async throws {
        try await self.withService { service, _ in
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            let other = RepositoryName("other/app")!
            do {
                _ = try await service.appendUpload(session.id, for: other, at: nil, body: Self.stream(["x"]))
                Issue.record("another repository wrote into the session")
            } catch let error as RegistryError {
                #expect(error.code == .blobUploadUnknown)
            }
        }
    }

    @Test func digestProgressTravelsWithTheUploadToAnotherReplica() async throws {
        try await self.withService { service, directory in
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: 0, body: Self.stream(["replica a, "]))
            // A second service over the same storage continues the session, then the first commits it.
            let other = try await BlobService.filesystem(directory: directory.path, logger: Logger(label: "test"))
            _ = try await other.appendUpload(session.id, for: self.repository, at: 11, body: Self.stream(["replica b"]))
            let saved = try #require(FileManager.default.contents(
                atPath: directory.appendingPathComponent("uploads/\(session.id)/hashstate").path
            ))
            #expect(String(decoding: saved, as: UTF8.self).contains(#""offset":20"#))
            let digest = StreamingHasher.digest(of: ByteBuffer(string: "replica a, replica b"))
            let blob = try await service.commitUpload(session.id, for: self.repository, digest: digest)
            #expect(try await Self.readAll(service, blob) == "replica a, replica b")
        }
    }

    @Test func staleDigestStateFallsBackToTheStoredBytes() async throws {
        try await self.withService { service, directory in
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: Self.stream(["kept"]))
            // Bytes that reached the file without their digest state (a write that failed midway).
            let data = directory.appendingPathComponent("uploads/\(session.id)/data")
            let handle = try FileHandle(forWritingTo: data)
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(" and more".utf8))
            try handle.close()
            let digest = StreamingHasher.digest(of: ByteBuffer(string: "kept and more"))
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
            #expect(restored.finalize() == StreamingHasher.digest(of: bytes, algorithm: algorithm))
        }
        #expect(ResumableHasher(algorithm: .sha256, state: [1, 2, 3]) == nil)
    }

    @Test func sha512AndZeroByteBlobs() async throws {
        try await self.withService { service, _ in
            let session = try await service.startUpload(for: self.repository, algorithm: .sha512)
            let digest = StreamingHasher.digest(of: ByteBuffer(), algorithm: .sha512)
            let blob = try await service.commitUpload(session.id, for: self.repository, digest: digest)
            #expect(blob.size == 0)
            #expect(blob.location.hasPrefix("blobs/sha512/"))
            #expect(try await Self.readAll(service, blob) == "")
        }
    }

    @Test func expiryRemovesOldSessionsOnly() async throws {
        try await self.withService { service, directory in
            let old = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(old.id, for: self.repository, at: nil, body: Self.stream(["abandoned"]))
            #expect(try await service.expireUploads(olderThan: 3600) == 0)
            #expect(try await service.expireUploads(olderThan: -1) == 1)
            #expect(Self.files(under: directory, "uploads").isEmpty)
            await #expect(throws: RegistryError.self) { try await service.uploadStatus(old.id, for: self.repository) }
        }
    }
}
