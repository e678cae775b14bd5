import Blob
import Contracts
import Foundation
import Logging
import Metadata
import NIOCore
import Registry
import Runtime
import Synchronization
import Testing

/// The Registry layer over the in-process services (SQLite and files), with the blob API counted.
@Suite struct RegistryServiceTests {
    let repository = RepositoryName("team/app")!

    /// Counts the calls a `BlobAPI` receives, by name.
    final class CountingBlobs: BlobAPI {
        let base: any BlobAPI
        let calls = Mutex<[String: Int]>([:])
        init(_ base: any BlobAPI) { self.base = base }
        func count(_ name: String) -> Int { self.calls.withLock { $0[name] ?? 0 } }
        private func note(_ name: String) { self.calls.withLock { $0[name, default: 0] += 1 } }

        func startUpload(for repository: RepositoryName, algorithm: Digest.Algorithm, owner: String) async throws -> UploadStatus {
            self.note("startUpload")
            return try await self.base.startUpload(for: repository, algorithm: algorithm, owner: owner)
        }
        func uploadStatus(_ id: UploadID, for repository: RepositoryName) async throws -> UploadStatus {
            self.note("uploadStatus")
            return try await self.base.uploadStatus(id, for: repository)
        }
        func appendUpload<Body: AsyncSequence & Sendable>(
            _ id: UploadID, for repository: RepositoryName, at offset: Int64?, body: Body
        ) async throws -> UploadStatus where Body.Element == ByteBuffer {
            self.note("appendUpload")
            return try await self.base.appendUpload(id, for: repository, at: offset, body: body)
        }
        func commitUpload(_ id: UploadID, for repository: RepositoryName, digest: Digest) async throws -> BlobRecord {
            self.note("commitUpload")
            return try await self.base.commitUpload(id, for: repository, digest: digest)
        }
        func cancelUpload(_ id: UploadID, for repository: RepositoryName) async throws {
            self.note("cancelUpload")
            try await self.base.cancelUpload(id, for: repository)
        }
        func read(_ blob: BlobRecord, range: ClosedRange<Int64>?, into sink: (ByteBuffer) async throws -> Void) async throws {
            self.note("read")
            try await self.base.read(blob, range: range, into: sink)
        }
        func discard(_ blob: BlobRecord) async throws {
            self.note("discard")
            try await self.base.discard(blob)
        }
        func discard(locations: [String]) async throws -> [String] {
            self.note("discardAll")
            return try await self.base.discard(locations: locations)
        }
        func storedBlobs(after location: String?, limit: Int) async throws -> StoredBlobPage {
            try await self.base.storedBlobs(after: location, limit: limit)
        }
        func externalURL(for blob: BlobRecord) async throws -> String? {
            self.note("externalURL")
            return try await self.base.externalURL(for: blob)
        }
    }

    static func withRegistry(_ body: (RegistryService, CountingBlobs) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-registry-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let logger = Logger(label: "test")
        let blobs = CountingBlobs(try await BlobService.filesystem(directory: directory.path, logger: logger))
        let metadata = try await MetadataService.sqlite(
            path: directory.appendingPathComponent("metadata.sqlite").path, settings: TagSettings(), logger: logger
        )
        do {
            try await body(RegistryService(metadata: metadata.service, blobs: blobs), blobs)
        } catch {
            try await metadata.close()
            throw error
        }
        try await metadata.close()
    }

    static func stream(_ text: String) -> AsyncStream<ByteBuffer> {
        AsyncStream { continuation in
            continuation.yield(ByteBuffer(string: text))
            continuation.finish()
        }
    }

    /// A monolithic push is one call of the layer: append, commit, link.
    @Test func completingAnUploadAppendsCommitsAndLinks() async throws {
        try await Self.withRegistry { registry, blobs in
            let session = try await registry.blobs.startUpload(for: self.repository, algorithm: .sha256, owner: "test")
            let digest = DigestHasher.digest(of: ByteBuffer(string: "bytes"))
            let blob = try await registry.completeUpload(
                session.id, in: self.repository, digest: digest, appending: Self.stream("bytes"), at: nil
            )
            #expect(blob.digest == digest && blob.size == 5)
            #expect(try await registry.metadata.blob(digest, in: self.repository) == blob)
            #expect(blobs.count("appendUpload") == 1 && blobs.count("commitUpload") == 1 && blobs.count("uploadStatus") == 0)
        }
    }

    /// A pull finds the blob in its repository only, and streams it from storage without URLs.
    @Test func pullsFindTheBlobAndStreamItFromFiles() async throws {
        try await Self.withRegistry { registry, blobs in
            let session = try await registry.blobs.startUpload(for: self.repository, algorithm: .sha256, owner: "test")
            let digest = DigestHasher.digest(of: ByteBuffer(string: "pulled"))
            _ = try await registry.completeUpload(session.id, in: self.repository, digest: digest, appending: Self.stream("pulled"), at: nil)
            #expect(try await registry.pull(digest, in: self.repository) == .stream(try #require(try await registry.metadata.blob(digest, in: self.repository))))
            // HEAD does not ask the storage for a URL.
            _ = try await registry.pull(digest, in: self.repository, redirect: false)
            #expect(blobs.count("externalURL") == 1)
            #expect(try await registry.pull(digest, in: RepositoryName("other/app")!) == nil)
        }
    }

    /// Mounts take the blob only from a permitted source.
    @Test func mountsLinkFromPermittedSourcesOnly() async throws {
        try await Self.withRegistry { registry, _ in
            let other = RepositoryName("other/app")!
            let session = try await registry.blobs.startUpload(for: other, algorithm: .sha256, owner: "test")
            let digest = DigestHasher.digest(of: ByteBuffer(string: "shared"))
            _ = try await registry.completeUpload(session.id, in: other, digest: digest, appending: Self.stream("shared"), at: nil)
            #expect(try await !registry.mount(digest, into: self.repository, from: .repositories([RepositoryName("third/app")!])))
            #expect(try await registry.metadata.blob(digest, in: self.repository) == nil)
            #expect(try await registry.mount(digest, into: self.repository, from: .repositories([other])))
            #expect(try await registry.mount(digest, into: RepositoryName("fourth/app")!, from: .anyRepository))
            #expect(try await registry.metadata.blob(digest, in: self.repository) != nil)
        }
    }
}
