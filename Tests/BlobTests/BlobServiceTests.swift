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

    @Test func commitAfterRestartRehashesTheStoredBytes() async throws {
        try await self.withService { service, directory in
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: Self.stream(["persisted"]))
            // A new service over the same directory has no running hash state.
            let restarted = try await BlobService.filesystem(directory: directory.path, logger: Logger(label: "test"))
            let digest = StreamingHasher.digest(of: ByteBuffer(string: "persisted"))
            let blob = try await restarted.commitUpload(session.id, for: self.repository, digest: digest)
            #expect(try await Self.readAll(restarted, blob) == "persisted")
        }
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
