import Contracts
import Foundation
import NIOCore
import Runtime
import Synchronization

/// Blobs and uploads in an S3 bucket (or an S3-compatible server).
///
/// Layout, under `STORAGE_S3_PREFIX`:
/// ```
/// blobs/<upload uuid>                 the blob: a multipart upload while the session runs, then the
///                                     completed object (location = this key, so commit never copies);
///                                     while fewer than one part's worth of bytes are pending, it holds
///                                     those bytes (the "tail") as a plain object
/// uploads/<upload uuid>/session.json  the session: info, multipart upload id, parts with ETags, size,
///                                     the tail's ETag and the running digest, written in one PUT
/// ```
/// An append reads the tail back, streams on, sends every full part as it fills while the next
/// one fills (so memory stays at two parts per active upload, however long the request), stores
/// the remainder as the new tail,
/// and then writes the session: the session object is the commit point of every append. A crash
/// before it leaves the previous session valid (parts are re-sent under the same numbers, and a
/// tail that changed under it is detected by its ETag). Blobs smaller than a part never become
/// multipart uploads; an empty blob is an empty object.
struct S3StorageDriver: StorageDriver {
    let client: S3Client
    let prefix: String
    let partSize: Int
    let presignExpiry: Int?
    /// The most bytes an append held in memory at once (for the tests of bounded memory).
    let buffered = PeakCounter()

    init(client: S3Client, settings: S3Settings) {
        self.client = client
        self.prefix = settings.prefix
        self.partSize = settings.partSize
        self.presignExpiry = settings.externalStore ? max(1, (settings.urlExpirationMilliseconds + 999) / 1000) : nil
    }

    struct Session: Codable, Sendable {
        struct Part: Codable, Sendable {
            var number: Int
            var etag: String
            var size: Int64
        }

        var info: UploadInfo
        var size: Int64
        var multipartID: String?
        var parts: [Part] = []
        /// ETag of the tail object holding the bytes after the parts; nil when there are none.
        var tailETag: String?
        var digest: SavedHashState?
        /// Set once the multipart upload was completed (to re-hash it); only commit or abort follow.
        var completed = false

        var tailSize: Int64 { self.size - self.parts.reduce(0) { $0 + $1.size } }
    }

    static func location(_ id: UploadID) -> String { "blobs/\(id)" }
    private func dataKey(_ id: UploadID) -> String { self.prefix + Self.location(id) }
    private func sessionKey(_ id: UploadID) -> String { self.prefix + "uploads/\(id)/session.json" }

    private func load(_ id: UploadID) async throws -> Session? {
        var json = ByteBuffer()
        do {
            try await self.client.getObject(self.sessionKey(id)) { chunk in
                var chunk = chunk
                json.writeBuffer(&chunk)
            }
        } catch let failure as S3Client.Failure where failure.status == 404 {
            return nil
        }
        return try JSONDecoder().decode(Session.self, from: Data(json.readableBytesView))
    }

    private func save(_ session: Session, _ id: UploadID) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try await self.client.putObject(self.sessionKey(id), ByteBuffer(bytes: try encoder.encode(session)))
    }

    private func existing(_ id: UploadID) async throws -> Session {
        guard let session = try await self.load(id) else {
            throw RegistryError(.blobUploadUnknown, "upload \(id) does not exist")
        }
        return session
    }

    func createUpload(_ id: UploadID, info: UploadInfo) async throws {
        try await Self.translating {
            try await self.save(Session(info: info, size: 0), id)
        }
    }

    func upload(_ id: UploadID) async throws -> (info: UploadInfo, size: Int64)? {
        try await Self.translating {
            try await self.load(id).map { ($0.info, $0.size) }
        }
    }

    func appendUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, at offset: Int64, body: Body, observe: (ByteBuffer) -> Void,
        digestState: (Int64) -> SavedHashState?
    ) async throws -> Int64 where Body.Element == ByteBuffer {
        try await Self.translating {
            var session = try await self.existing(id)
            guard !session.completed else {
                throw RegistryError(.blobUploadInvalid, "upload \(id) is being committed")
            }
            guard offset == session.size else {
                throw RegistryError.rangeNotSatisfiable("chunk starts at \(offset) but the upload has \(session.size) bytes", offset: session.size)
            }
            var buffer = ByteBuffer()
            buffer.reserveCapacity(self.partSize + (256 << 10))
            try await self.readTail(session, id, into: &buffer)
            var size = session.size
            var appended = false
            // One part travels to S3 while the next one fills: at most two parts in memory.
            var inFlight: Task<Session.Part, any Error>?
            do {
                for try await chunk in body {
                    observe(chunk)
                    buffer.writeImmutableBuffer(chunk)
                    size += Int64(chunk.readableBytes)
                    appended = appended || chunk.readableBytes > 0
                    self.buffered.record(buffer.readableBytes + (inFlight == nil ? 0 : self.partSize))
                    while buffer.readableBytes >= self.partSize {
                        let part = buffer.readSlice(length: self.partSize)!
                        if let previous = inFlight {
                            inFlight = nil
                            session.parts.append(try await previous.value)
                        }
                        inFlight = try await self.startSending(part, of: id, session: &session)
                        // Keep the remainder (less than a chunk) in a buffer of its own so the
                        // part's memory is released once it is sent.
                        var rest = ByteBuffer()
                        rest.reserveCapacity(self.partSize + (256 << 10))
                        rest.writeImmutableBuffer(buffer)
                        buffer = rest
                    }
                }
                if let previous = inFlight {
                    inFlight = nil
                    session.parts.append(try await previous.value)
                }
            } catch {
                if let inFlight {
                    inFlight.cancel()
                    _ = try? await inFlight.value
                }
                throw error
            }
            guard appended else { return session.size }
            session.tailETag = buffer.readableBytes > 0 ? try await self.client.putObject(self.dataKey(id), buffer) : nil
            session.size = size
            session.digest = digestState(size)
            try await self.save(session, id)
            return size
        }
    }

    /// Starts sending the next part in the background, opening the multipart upload first if this
    /// is the first part. The caller appends the finished part to the session.
    private func startSending(_ part: ByteBuffer, of id: UploadID, session: inout Session) async throws
        -> Task<Session.Part, any Error>
    {
        if session.multipartID == nil {
            session.multipartID = try await self.client.createMultipartUpload(self.dataKey(id))
            // Record it at once, so that an abort or expiry can always find and end it.
            try await self.save(session, id)
        }
        let (client, key, uploadID, number) = (self.client, self.dataKey(id), session.multipartID!, session.parts.count + 1)
        return Task {
            let etag = try await client.uploadPart(key, uploadID: uploadID, number: number, bytes: part)
            return Session.Part(number: number, etag: etag, size: Int64(part.readableBytes))
        }
    }

    /// Appends the session's pending tail bytes to `buffer`, checking they are the ones the session names.
    private func readTail(_ session: Session, _ id: UploadID, into buffer: inout ByteBuffer) async throws {
        guard session.tailSize > 0, let etag = session.tailETag else { return }
        do {
            try await self.client.getObject(self.dataKey(id), ifMatch: etag) { chunk in
                var chunk = chunk
                buffer.writeBuffer(&chunk)
            }
        } catch let failure as S3Client.Failure where failure.status == 412 || failure.status == 404 {
            throw RegistryError(.blobUploadInvalid, "upload \(id) lost its pending bytes in an interrupted write; start it again")
        }
        guard Int64(buffer.readableBytes) == session.tailSize else {
            throw RegistryError(.blobUploadInvalid, "upload \(id) lost its pending bytes in an interrupted write; start it again")
        }
    }

    /// Completes the multipart upload (the tail becomes its last part), so the object holds all bytes.
    private func complete(_ session: inout Session, _ id: UploadID) async throws {
        guard !session.completed else { return }
        if let uploadID = session.multipartID {
            if session.tailSize > 0 {
                var tail = ByteBuffer()
                try await self.readTail(session, id, into: &tail)
                session.parts.append(try await self.startSending(tail, of: id, session: &session).value)
            }
            do {
                try await self.client.completeMultipartUpload(
                    self.dataKey(id), uploadID: uploadID, parts: session.parts.map { ($0.number, $0.etag) }
                )
            } catch let failure as S3Client.Failure where failure.status == 404 {
                // Completed by an earlier attempt whose session write did not happen.
                guard try await self.client.headObject(self.dataKey(id))?.size == session.size else { throw failure }
            }
        } else if session.size == 0 {
            try await self.client.putObject(self.dataKey(id), ByteBuffer())
        }
        // Otherwise the tail object already is the whole blob.
        session.completed = true
    }

    func readUpload(_ id: UploadID, into sink: (ByteBuffer) async throws -> Void) async throws {
        try await Self.translating {
            // Parts of a multipart upload cannot be read back: complete it first. Only a commit
            // (which re-hashes through here) or an abort can follow.
            var session = try await self.existing(id)
            if !session.completed {
                try await self.complete(&session, id)
                try await self.save(session, id)
            }
            try await self.client.getObject(self.dataKey(id), into: sink)
        }
    }

    func commitUpload(_ id: UploadID, as digest: Digest) async throws -> String {
        try await Self.translating {
            var session = try await self.existing(id)
            try await self.complete(&session, id)
            try await self.client.deleteObject(self.sessionKey(id))
            return Self.location(id)
        }
    }

    func loadHashState(_ id: UploadID) async throws -> SavedHashState? {
        try await Self.translating {
            try await self.load(id)?.digest
        }
    }

    func abortUpload(_ id: UploadID) async throws {
        try await Self.translating {
            // Without a session there is nothing of this upload's to remove; the key may already be a
            // committed blob.
            guard let session = try await self.load(id) else { return }
            if let uploadID = session.multipartID, !session.completed {
                do {
                    try await self.client.abortMultipartUpload(self.dataKey(id), uploadID: uploadID)
                } catch let failure as S3Client.Failure where failure.status == 404 {
                    // Already ended.
                }
            }
            try await self.client.deleteObject(self.dataKey(id))
            // The session goes last: while it exists, a retry can still find what to clean up.
            try await self.client.deleteObject(self.sessionKey(id))
        }
    }

    func listUploads() async throws -> [(id: UploadID, startedAt: Double)] {
        try await Self.translating {
            var result: [(id: UploadID, startedAt: Double)] = []
            for object in try await self.client.listObjects(prefix: self.prefix + "uploads/") {
                let parts = object.key.dropFirst(self.prefix.count).split(separator: "/")
                guard parts.count == 3, parts[2] == "session.json", let id = UploadID(parts[1]),
                      let session = try await self.load(id)
                else { continue }
                result.append((id, session.info.startedAt))
            }
            return result
        }
    }

    /// Aborts multipart uploads under `blobs/` older than `cutoff` that no session knows (left by
    /// a process that died between opening one and recording it).
    func collectGarbage(olderThan cutoff: Double) async throws -> Int {
        try await Self.translating {
            var removed = 0
            for upload in try await self.client.multipartUploads(prefix: self.prefix + "blobs/") {
                guard let initiated = AWSCredentialsProvider.parseDate(upload.initiated)?.timeIntervalSince1970,
                      initiated < cutoff,
                      let id = UploadID(upload.key.dropFirst(self.prefix.count + "blobs/".count))
                else { continue }
                let session = try await self.load(id)
                guard session?.multipartID != upload.uploadID else { continue }
                try await self.client.abortMultipartUpload(upload.key, uploadID: upload.uploadID)
                removed += 1
            }
            return removed
        }
    }

    func read(
        location: String, range: ClosedRange<Int64>?, into sink: (ByteBuffer) async throws -> Void
    ) async throws {
        try await Self.translating {
            do {
                try await self.client.getObject(self.prefix + location, range: range, into: sink)
            } catch let failure as S3Client.Failure where failure.status == 404 {
                throw RegistryError(.blobUnknown, "the blob's bytes are missing from the bucket (\(location))")
            }
        }
    }

    func deleteBlob(location: String) async throws {
        try await Self.translating {
            try await self.client.deleteObject(self.prefix + location)
        }
    }

    func externalURL(location: String) async throws -> String? {
        guard let expiry = self.presignExpiry else { return nil }
        return try await Self.translating {
            try await self.client.presignedGet(self.prefix + location, expires: expiry)
        }
    }

    /// Runs `body`, turning S3 failures into registry errors: throttling, outages and unreachable
    /// servers become 503 `UNAVAILABLE` (after the client's retries), anything else a 500 naming
    /// S3's error code.
    static func translating<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as RegistryError {
            throw error
        } catch let error as CancellationError {
            throw error
        } catch {
            if S3Client.isTransient(error) {
                throw RegistryError(.unavailable, "blob storage is unavailable: \(error)")
            }
            throw RegistryError(.unknown, "blob storage failed: \(error)")
        }
    }
}

/// The highest value recorded, safely from any task.
final class PeakCounter: Sendable {
    private let value = Mutex(0)

    func record(_ current: Int) {
        self.value.withLock { $0 = max($0, current) }
    }

    var peak: Int { self.value.withLock { $0 } }
}
