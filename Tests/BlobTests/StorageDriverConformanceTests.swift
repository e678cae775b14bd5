import Contracts
import Foundation
import NIOCore
import Runtime
import Testing
import _NIOFileSystem

@testable import Blob

/// What every storage driver must do, run on each: the filesystem, and S3 on moto with signature
/// checking on. Each S3 run uses a key prefix of its own in the shared moto bucket.
@Suite struct StorageDriverConformanceTests {
    let repository = RepositoryName("team/app")!
    typealias F = StorageFixture

    @Test(arguments: StorageBackend.allCases)
    func chunksAppendAndCommitVerifiesTheDigest(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            var status = try await service.appendUpload(session.id, for: self.repository, at: 0, body: F.stream(["hello ", "wor"]))
            #expect(status.offset == 9)
            #expect(try await service.uploadStatus(session.id, for: self.repository).offset == 9)
            status = try await service.appendUpload(session.id, for: self.repository, at: 9, body: F.stream(["ld"]))
            #expect(status.offset == 11)
            let digest = DigestHasher.digest(of: ByteBuffer(string: "hello world"))
            let blob = try await service.commitUpload(session.id, for: self.repository, digest: digest)
            #expect(blob.size == 11)
            #expect(String(buffer: try await F.readAll(service, blob)) == "hello world")
            #expect(String(buffer: try await F.readAll(service, blob, range: 6...10)) == "world")
            #expect(try await storage.uploadLeftovers().isEmpty)
            #expect(try await storage.storedBlobs().count == 1)
            await #expect(throws: RegistryError.self) { try await service.uploadStatus(session.id, for: self.repository) }
        }
    }

    /// Two uploads of one digest are stored at locations of their own, so deleting the bytes of
    /// one (a collected blob) never removes the other's (a new push of the same content).
    @Test(arguments: StorageBackend.allCases)
    func uploadsOfOneDigestHaveLocationsOfTheirOwn(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let digest = DigestHasher.digest(of: ByteBuffer(string: "same bytes"))
            var committed: [BlobRecord] = []
            for _ in 0..<2 {
                let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
                _ = try await service.appendUpload(session.id, for: self.repository, at: 0, body: F.stream(["same bytes"]))
                committed.append(try await service.commitUpload(session.id, for: self.repository, digest: digest))
            }
            #expect(committed[0].location != committed[1].location)
            try await service.discard(committed[0])
            #expect(String(buffer: try await F.readAll(service, committed[1])) == "same bytes")
            #expect(try await storage.storedBlobs().count == 1)
        }
    }

    /// Several requests with chunks of odd sizes add up to more than two S3 parts; every byte
    /// arrives in order, and ranges across part boundaries read back exactly.
    @Test(arguments: StorageBackend.allCases)
    func uploadsSpanningPartsReadBackExactly(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let total = 2 * F.partSize + 777_777
            let bytes = F.pattern(total)
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            // Requests of 3 MiB + 1 byte each, in chunks of 100,000 bytes.
            let request = 3 << 20 + 1
            var offset = 0
            while offset < total {
                let length = min(request, total - offset)
                let chunks = stride(from: offset, to: offset + length, by: 100_000).map {
                    bytes.getSlice(at: $0, length: min(100_000, offset + length - $0))!
                }
                let status = try await service.appendUpload(session.id, for: self.repository, at: Int64(offset), body: F.stream(chunks))
                offset += length
                #expect(status.offset == Int64(offset))
            }
            let blob = try await service.commitUpload(session.id, for: self.repository, digest: DigestHasher.digest(of: bytes))
            #expect(blob.size == Int64(total))
            #expect(try await F.readAll(service, blob) == bytes)
            let boundary = F.partSize
            let range = Int64(boundary - 10)...Int64(boundary + 10)
            #expect(try await F.readAll(service, blob, range: range) == bytes.getSlice(at: boundary - 10, length: 21))
            #expect(try await storage.uploadLeftovers().isEmpty)
        }
    }

    /// Network chunks of every size around the filesystem driver's write buffer (and S3's parts
    /// are other sizes again), in two requests and a closing one that appends: stored exactly.
    @Test(arguments: StorageBackend.allCases)
    func chunksAroundTheWriteSizeAreStoredExactly(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let write = Int(FilesystemDriver.writeBufferSize.bytes)
            let first = [1, write - 1, write, write + 1, 3 * write, 7, write - 8]
            let second = [5 * write + 3]
            let last = [2, write]
            let total = (first + second + last).reduce(0, +)
            let bytes = F.pattern(total)
            var offset = 0
            func chunks(_ sizes: [Int]) -> [ByteBuffer] {
                sizes.map { size in
                    defer { offset += size }
                    return bytes.getSlice(at: offset, length: size)!
                }
            }
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            var status = try await service.appendUpload(session.id, for: self.repository, at: 0, body: F.stream(chunks(first)))
            #expect(status.offset == Int64(first.reduce(0, +)))
            status = try await service.appendUpload(session.id, for: self.repository, at: status.offset, body: F.stream(chunks(second)))
            #expect(status.offset == Int64((first + second).reduce(0, +)))
            let blob = try await service.commitUpload(
                session.id, for: self.repository, digest: DigestHasher.digest(of: bytes), appending: F.stream(chunks(last)),
                at: status.offset
            )
            #expect(blob.size == Int64(total))
            #expect(try await F.readAll(service, blob) == bytes)
            #expect(try await storage.uploadLeftovers().isEmpty)
        }
    }

    @Test(arguments: StorageBackend.allCases)
    func wrongDigestStoresNothing(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: F.stream([F.pattern(F.partSize + 5)]))
            let wrong = DigestHasher.digest(of: ByteBuffer(string: "other"))
            do {
                _ = try await service.commitUpload(session.id, for: self.repository, digest: wrong)
                Issue.record("commit with a wrong digest succeeded")
            } catch let error as RegistryError {
                #expect(error.code == .digestInvalid)
            }
            #expect(try await storage.storedBlobs().isEmpty)
            #expect(try await storage.uploadLeftovers().isEmpty)
        }
    }

    /// A digest of another algorithm than the session hashes with makes the driver read the
    /// upload back (S3: after completing its multipart upload); a match commits, a mismatch
    /// leaves nothing.
    @Test(arguments: StorageBackend.allCases)
    func aDigestOfAnotherAlgorithmReadsTheUploadBack(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let bytes = F.pattern(F.partSize + 1000)
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: F.stream([bytes]))
            let blob = try await service.commitUpload(
                session.id, for: self.repository, digest: DigestHasher.digest(of: bytes, algorithm: .sha512)
            )
            #expect(try await F.readAll(service, blob) == bytes)

            let other = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(other.id, for: self.repository, at: nil, body: F.stream([bytes]))
            await #expect(throws: RegistryError.self) {
                try await service.commitUpload(
                    other.id, for: self.repository, digest: DigestHasher.digest(of: ByteBuffer(string: "x"), algorithm: .sha512)
                )
            }
            #expect(try await storage.storedBlobs().count == 1)
            #expect(try await storage.uploadLeftovers().isEmpty)
        }
    }

    @Test(arguments: StorageBackend.allCases)
    func outOfOrderChunkIs416(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: 0, body: F.stream(["abc"]))
            do {
                _ = try await service.appendUpload(session.id, for: self.repository, at: 5, body: F.stream(["x"]))
                Issue.record("out-of-order chunk accepted")
            } catch let error as RegistryError {
                #expect(error.status == 416)
            }
            #expect(try await service.uploadStatus(session.id, for: self.repository).offset == 3)
        }
    }

    @Test(arguments: StorageBackend.allCases)
    func sessionsBelongToTheirRepository(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            let other = RepositoryName("other/app")!
            do {
                _ = try await service.appendUpload(session.id, for: other, at: nil, body: F.stream(["x"]))
                Issue.record("another repository wrote into the session")
            } catch let error as RegistryError {
                #expect(error.code == .blobUploadUnknown)
            }
            await #expect(throws: RegistryError.self) { try await service.cancelUpload(session.id, for: other) }
            #expect(try await service.uploadStatus(session.id, for: self.repository).offset == 0)
        }
    }

    @Test(arguments: StorageBackend.allCases)
    func digestProgressTravelsWithTheUploadToAnotherReplica(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let first = F.pattern(F.partSize + 3)
            let second = F.pattern(1000, from: 7)
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: 0, body: F.stream([first]))
            // A second service over the same storage continues the session, then the first commits it.
            let other = try await storage.replica()
            _ = try await other.appendUpload(session.id, for: self.repository, at: Int64(first.readableBytes), body: F.stream([second]))
            var whole = first
            whole.writeImmutableBuffer(second)
            let blob = try await service.commitUpload(session.id, for: self.repository, digest: DigestHasher.digest(of: whole))
            #expect(try await F.readAll(other, blob) == whole)
        }
    }

    @Test(arguments: StorageBackend.allCases)
    func sha512AndZeroByteBlobs(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let session = try await service.startUpload(for: self.repository, algorithm: .sha512)
            let digest = DigestHasher.digest(of: ByteBuffer(), algorithm: .sha512)
            let blob = try await service.commitUpload(session.id, for: self.repository, digest: digest)
            #expect(blob.size == 0)
            #expect(try await F.readAll(service, blob).readableBytes == 0)
            #expect(try await storage.uploadLeftovers().isEmpty)
        }
    }

    @Test(arguments: StorageBackend.allCases)
    func cancelRemovesEverything(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: F.stream([F.pattern(F.partSize + 10)]))
            #expect(try await !storage.uploadLeftovers().isEmpty)
            try await service.cancelUpload(session.id, for: self.repository)
            #expect(try await storage.uploadLeftovers().isEmpty)
            #expect(try await storage.storedBlobs().isEmpty)
            await #expect(throws: RegistryError.self) { try await service.uploadStatus(session.id, for: self.repository) }
        }
    }

    @Test(arguments: StorageBackend.allCases)
    func discardRemovesACommittedBlob(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: F.stream(["duplicate"]))
            let blob = try await service.commitUpload(
                session.id, for: self.repository, digest: DigestHasher.digest(of: ByteBuffer(string: "duplicate"))
            )
            #expect(try await storage.storedBlobs().count == 1)
            try await service.discard(blob)
            #expect(try await storage.storedBlobs().isEmpty)
        }
    }

    /// The collector's batches: one call deletes many blobs (S3: `DeleteObjects`); a location
    /// already gone counts as deleted, one that is not this storage's is skipped.
    @Test(arguments: StorageBackend.allCases)
    func manyBlobsAreDiscardedInOneCall(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            var blobs: [BlobRecord] = []
            for number in 0..<5 {
                let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
                _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: F.stream(["blob \(number)"]))
                blobs.append(try await service.commitUpload(
                    session.id, for: self.repository, digest: DigestHasher.digest(of: ByteBuffer(string: "blob \(number)"))
                ))
            }
            try await service.discard(blobs[0])
            let deleted = try await service.discard(locations: blobs.map(\.location) + ["../../etc/passwd"])
            #expect(Set(deleted) == Set(blobs.map(\.location)))
            #expect(try await storage.storedBlobs().isEmpty)
        }
    }

    /// The orphan scan's listing: every committed blob once, in location order, a page at a time,
    /// with its size and when it was written; uploads in progress are not blobs.
    @Test(arguments: StorageBackend.allCases)
    func storedBlobsAreListedInPages(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            var committed: [BlobRecord] = []
            for number in 0..<5 {
                let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
                _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: F.stream(["listed \(number)"]))
                committed.append(try await service.commitUpload(
                    session.id, for: self.repository, digest: DigestHasher.digest(of: ByteBuffer(string: "listed \(number)"))
                ))
            }
            let pending = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(pending.id, for: self.repository, at: nil, body: F.stream(["not committed"]))
            var listed: [StoredBlob] = []
            var after: String?
            var pages = 0
            repeat {
                let page = try await service.storedBlobs(after: after, limit: 2)
                #expect(page.items.count <= 2)
                listed += page.items
                pages += 1
                after = page.next
            } while after != nil && pages < 10
            #expect(pages == 3)
            #expect(listed.map(\.location) == committed.map(\.location).sorted())
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            for blob in listed {
                #expect(blob.size == 8 && abs(blob.modifiedMillis - now) < 120_000, "\(blob)")
            }
        }
    }

    @Test(arguments: StorageBackend.allCases)
    func expiryRemovesOldSessionsOnly(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let old = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(old.id, for: self.repository, at: nil, body: F.stream([F.pattern(F.partSize + 1)]))
            #expect(try await service.expireUploads(olderThan: 3600) == 0)
            #expect(try await service.expireUploads(olderThan: -1) == 1)
            #expect(try await storage.uploadLeftovers().isEmpty)
            #expect(try await storage.storedBlobs().isEmpty)
            await #expect(throws: RegistryError.self) { try await service.uploadStatus(old.id, for: self.repository) }
        }
    }
}
