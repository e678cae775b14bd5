import Contracts
import Foundation
import Logging
import NIOCore
import Runtime
import Synchronization

/// Blobs and uploads in an S3 bucket (or an S3-compatible server).
///
/// Layout, under `STORAGE_S3_PREFIX`:
/// ```
/// blobs/<upload uuid>                 a blob of one part or more: the multipart upload while the
///                                     session runs, then the completed object (location = this key,
///                                     so commit never copies); an empty blob is an empty object here
/// blobs/<upload uuid>.<16 hex>        the bytes after the last full part (the "tail"), written by one
///                                     append request under a key of its own; a blob smaller than a
///                                     part is its session's last tail, and that key is its location
/// uploads/<upload uuid>/session.json  the session: info, multipart upload id, parts with ETags, size,
///                                     the tail's key and ETag, the running digest, and whether a
///                                     commit sealed it or a cancel ended it
/// ```
/// An append reads the tail back, streams on, sends every full part as it fills while the next
/// one fills (so memory stays at two parts per active upload, however long the request), stores
/// the remainder as a new tail, and then writes the session. **Every session write is conditional**
/// (`If-Match` on the ETag the request read), so the session object is a compare-and-swap
/// register: of two requests that read one version, one write wins and the other request fails
/// (409) and deletes its own tail. A commit first seals the session the same way; afterwards no
/// append can record anything, a tail written by a stalled request lands under a key nobody
/// refers to, and a part it sends either arrives after the multipart upload was completed (S3
/// refuses it) or replaces a part the sealed session lists with another ETag (the completion fails).
/// So the bytes placed are exactly the bytes the sealed digest covers, on any number of replicas.
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
        /// Key (under the prefix) of the tail object; nil in sessions written before tails had keys
        /// of their own (the tail is then at the blob key).
        var tailKey: String?
        var digest: SavedHashState?
        /// Set once the multipart upload was completed (to re-hash it); only commit or abort follow.
        var completed = false
        /// Set by the commit before it verifies the digest: no append may follow.
        var sealed: Bool? = nil
        /// Set by a cancel or expiry before it removes the objects: nothing else may follow.
        var ended: Bool? = nil

        var tailSize: Int64 { self.size - self.parts.reduce(0) { $0 + $1.size } }
        var isSealed: Bool { self.sealed == true }
        var isEnded: Bool { self.ended == true }
    }

    static func location(_ id: UploadID) -> String { "blobs/\(id)" }
    private func dataKey(_ id: UploadID) -> String { self.prefix + Self.location(id) }
    private func sessionKey(_ id: UploadID) -> String { self.prefix + "uploads/\(id)/session.json" }
    private func tailKey(of session: Session, _ id: UploadID) -> String {
        session.tailKey.map { self.prefix + $0 } ?? self.dataKey(id)
    }

    /// A tail location of its own for one append request: `blobs/<uuid>.<16 hex>`.
    private static func newTailLocation(_ id: UploadID) -> String {
        var generator = SystemRandomNumberGenerator()
        let token = (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Self.location(id) + "." + DigestHasher.hex(token)
    }

    private func load(_ id: UploadID) async throws -> (session: Session, etag: String)? {
        var json = ByteBuffer()
        let etag: String
        do {
            etag = try await self.client.getObject(self.sessionKey(id)) { chunk in
                var chunk = chunk
                json.writeBuffer(&chunk)
            }
        } catch let failure as S3Client.Failure where failure.status == 404 {
            return nil
        }
        return (try JSONDecoder().decode(Session.self, from: Data(json.readableBytesView)), etag)
    }

    /// Writes the session if it is still the version `etag` names (nil: a new session); returns the
    /// new version's ETag. 409 when another request changed or removed it meanwhile.
    private func save(_ session: Session, _ id: UploadID, ifMatch etag: String?) async throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        do {
            return try await self.client.putObject(
                self.sessionKey(id), ByteBuffer(bytes: try encoder.encode(session)), ifMatch: etag
            )
        } catch let failure as S3Client.Failure where [404, 409, 412].contains(failure.status) && etag != nil {
            throw RegistryError.uploadBusy(id, "another request changed upload \(id) at the same time")
        }
    }

    private func existing(_ id: UploadID) async throws -> (session: Session, etag: String) {
        guard let loaded = try await self.load(id), !loaded.session.isEnded else {
            throw RegistryError(.blobUploadUnknown, "upload \(id) does not exist")
        }
        return loaded
    }

    func createUpload(_ id: UploadID, info: UploadInfo) async throws {
        try await Self.translating {
            _ = try await self.save(Session(info: info, size: 0), id, ifMatch: nil)
        }
    }

    func upload(_ id: UploadID) async throws -> (info: UploadInfo, size: Int64)? {
        try await Self.translating {
            guard let session = try await self.load(id)?.session, !session.isEnded else { return nil }
            return (session.info, session.size)
        }
    }

    func appendUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, at offset: Int64, body: Body, observe: (ByteBuffer) -> Void,
        digestState: (Int64) -> SavedHashState?
    ) async throws -> Int64 where Body.Element == ByteBuffer {
        try await Self.translating {
            var (session, etag) = try await self.existing(id)
            guard !session.completed, !session.isSealed else {
                throw RegistryError.uploadBusy(id, "upload \(id) is being committed")
            }
            guard offset == session.size else {
                throw RegistryError.rangeNotSatisfiable("chunk starts at \(offset) but the upload has \(session.size) bytes", offset: session.size)
            }
            var buffer = ByteBuffer()
            buffer.reserveCapacity(self.partSize + (256 << 10))
            try await self.readTail(session, id, into: &buffer)
            let previousTail = session.tailSize > 0 ? self.tailKey(of: session, id) : nil
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
                        inFlight = try await self.startSending(part, of: id, session: &session, etag: &etag)
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
            var newTail: String?
            if buffer.readableBytes > 0 {
                let location = Self.newTailLocation(id)
                session.tailETag = try await self.client.putObject(self.prefix + location, buffer)
                session.tailKey = location
                newTail = self.prefix + location
            } else {
                session.tailETag = nil
                session.tailKey = nil
            }
            session.size = size
            session.digest = digestState(size)
            do {
                _ = try await self.save(session, id, ifMatch: etag)
            } catch {
                // This request's tail is named by no session: remove it.
                if let newTail { try? await self.client.deleteObject(newTail) }
                throw error
            }
            // The superseded tail is named by no session any more.
            if let previousTail, previousTail != newTail, previousTail != self.dataKey(id) {
                try? await self.client.deleteObject(previousTail)
            }
            return size
        }
    }

    /// Starts sending the next part in the background, opening the multipart upload first if this
    /// is the first part. The caller appends the finished part to the session.
    private func startSending(_ part: ByteBuffer, of id: UploadID, session: inout Session, etag: inout String) async throws
        -> Task<Session.Part, any Error>
    {
        if session.multipartID == nil {
            let multipartID = try await self.client.createMultipartUpload(self.dataKey(id))
            session.multipartID = multipartID
            // Record it at once, so that an abort or expiry can always find and end it.
            do {
                etag = try await self.save(session, id, ifMatch: etag)
            } catch {
                try? await self.client.abortMultipartUpload(self.dataKey(id), uploadID: multipartID)
                throw error
            }
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
        let start = buffer.readableBytes
        do {
            try await self.client.getObject(self.tailKey(of: session, id), ifMatch: etag) { chunk in
                var chunk = chunk
                buffer.writeBuffer(&chunk)
            }
        } catch let failure as S3Client.Failure where failure.status == 412 || failure.status == 404 {
            throw RegistryError(.blobUploadInvalid, "upload \(id) lost its pending bytes in an interrupted write; start it again")
        }
        guard Int64(buffer.readableBytes - start) == session.tailSize else {
            throw RegistryError(.blobUploadInvalid, "upload \(id) lost its pending bytes in an interrupted write; start it again")
        }
    }

    func sealUpload(_ id: UploadID) async throws -> (size: Int64, digest: SavedHashState?) {
        try await Self.translating {
            var (session, etag) = try await self.existing(id)
            guard !session.isSealed else {
                throw RegistryError.uploadBusy(id, "upload \(id) is already being committed")
            }
            session.sealed = true
            _ = try await self.save(session, id, ifMatch: etag)
            return (session.size, session.digest)
        }
    }

    /// The sealed session, for the steps of a commit.
    private func sealed(_ id: UploadID) async throws -> (session: Session, etag: String) {
        let loaded = try await self.existing(id)
        guard loaded.session.isSealed else {
            throw RegistryError(.blobUploadInvalid, "upload \(id) was not sealed for commit")
        }
        return loaded
    }

    /// Completes the multipart upload of a sealed session (the tail becomes its last part), so the
    /// object holds all bytes; returns the location of the whole blob.
    private func complete(_ session: inout Session, _ id: UploadID, etag: inout String) async throws -> String {
        if let uploadID = session.multipartID {
            if !session.completed {
                if session.tailSize > 0 {
                    var tail = ByteBuffer()
                    try await self.readTail(session, id, into: &tail)
                    session.parts.append(try await self.startSending(tail, of: id, session: &session, etag: &etag).value)
                }
                do {
                    try await self.client.completeMultipartUpload(
                        self.dataKey(id), uploadID: uploadID, parts: session.parts.map { ($0.number, $0.etag) }
                    )
                } catch let failure as S3Client.Failure where failure.status == 404 {
                    // Completed by an earlier attempt whose session write did not happen.
                    guard try await self.client.headObject(self.dataKey(id))?.size == session.size else { throw failure }
                } catch let failure as S3Client.Failure where failure.code == "InvalidPart" {
                    throw RegistryError.uploadBusy(id, "a part of upload \(id) was replaced by a concurrent request")
                }
                session.completed = true
            }
            return Self.location(id)
        }
        if session.size == 0 {
            if !session.completed {
                try await self.client.putObject(self.dataKey(id), ByteBuffer())
                session.completed = true
            }
            return Self.location(id)
        }
        // The tail object already is the whole blob, under a key no other request writes.
        return session.tailKey ?? Self.location(id)
    }

    func readUpload(_ id: UploadID, into sink: (ByteBuffer) async throws -> Void) async throws {
        try await Self.translating {
            // Parts of a multipart upload cannot be read back: complete it first. Only a commit
            // (which re-hashes through here) or an abort can follow.
            var (session, etag) = try await self.sealed(id)
            let location = try await self.complete(&session, id, etag: &etag)
            _ = try await self.save(session, id, ifMatch: etag)
            try await self.client.getObject(self.prefix + location, into: sink)
        }
    }

    func commitUpload(_ id: UploadID, as digest: Digest) async throws -> String {
        try await Self.translating {
            var (session, etag) = try await self.sealed(id)
            let location = try await self.complete(&session, id, etag: &etag)
            if session.multipartID != nil, let tail = session.tailKey {
                // The tail became the last part: its own object is named by nothing now.
                try? await self.client.deleteObject(self.prefix + tail)
            }
            try await self.client.deleteObject(self.sessionKey(id))
            return location
        }
    }

    func loadHashState(_ id: UploadID) async throws -> SavedHashState? {
        try await Self.translating {
            try await self.load(id)?.session.digest
        }
    }

    func abortUpload(_ id: UploadID, evenIfSealed: Bool) async throws {
        try await Self.translating {
            // Without a session there is nothing of this upload's to remove; the key may already be a
            // committed blob.
            guard let loaded = try await self.load(id) else { return }
            var (session, etag) = loaded
            if session.isSealed, !evenIfSealed {
                throw RegistryError.uploadBusy(id, "upload \(id) is being committed")
            }
            if !session.isEnded {
                // Claim the session first, so a commit that read it cannot seal it any more.
                session.ended = true
                etag = try await self.save(session, id, ifMatch: etag)
            }
            if let uploadID = session.multipartID, !session.completed {
                do {
                    try await self.client.abortMultipartUpload(self.dataKey(id), uploadID: uploadID)
                } catch let failure as S3Client.Failure where failure.status == 404 {
                    // Already ended.
                }
            }
            if session.tailSize > 0 || session.tailKey != nil {
                try await self.client.deleteObject(self.tailKey(of: session, id))
            }
            if session.completed || session.tailKey == nil {
                try await self.client.deleteObject(self.dataKey(id))
            }
            // The session goes last: while it exists, a retry can still find what to clean up.
            try await self.client.deleteObject(self.sessionKey(id))
        }
    }

    func isReachable() async -> Bool {
        (try? await self.client.headBucket()) != nil
    }

    func isOwnLocation(_ location: String) -> Bool {
        // blobs/<uuid> or blobs/<uuid>.<16 hex>
        guard location.hasPrefix("blobs/") else { return false }
        let name = location.dropFirst("blobs/".count)
        guard name.utf8.count == 36 || name.utf8.count == 36 + 17 else { return false }
        guard UploadID(name.prefix(36)) != nil else { return false }
        let token = name.dropFirst(36)
        guard let dot = token.first else { return true }
        return dot == "." && token.dropFirst().allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    func listUploads() async throws -> [(id: UploadID, startedAt: Double)] {
        try await Self.translating {
            var result: [(id: UploadID, startedAt: Double)] = []
            for object in try await self.client.listObjects(prefix: self.prefix + "uploads/") {
                let parts = object.key.dropFirst(self.prefix.count).split(separator: "/")
                guard parts.count == 3, parts[2] == "session.json", let id = UploadID(parts[1]),
                      let session = try await self.load(id)?.session
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
                let session = try await self.load(id)?.session
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

    /// A page of `blobs/`, without the tails of sessions still open (their bytes are under
    /// `blobs/` too, before any commit).
    func listBlobs(after location: String?, limit: Int) async throws -> (blobs: [StoredBlob], next: String?) {
        try await Self.translating {
            let (page, truncated) = try await self.client.listObjectsPage(
                prefix: self.prefix + "blobs/", startAfter: location.map { self.prefix + $0 }, maxKeys: min(limit, 1000)
            )
            let open = Set(try await self.client.listObjects(prefix: self.prefix + "uploads/").compactMap { object in
                UploadID(object.key.dropFirst(self.prefix.count + "uploads/".count).prefix(36))
            }.map(\.value))
            let blobs = page.compactMap { object -> StoredBlob? in
                let location = String(object.key.dropFirst(self.prefix.count))
                let id = String(location.dropFirst("blobs/".count).prefix(36))
                guard !open.contains(id) else { return nil }
                return StoredBlob(location: location, size: object.size, modifiedMillis: object.modifiedMillis)
            }
            return (blobs, truncated ? page.last.map { String($0.key.dropFirst(self.prefix.count)) } : nil)
        }
    }

    /// `DeleteObjects`, 1,000 keys a call, up to 4 calls at once.
    func deleteBlobs(locations: [String]) async throws -> Set<String> {
        let batches = stride(from: 0, to: locations.count, by: 1000).map { Array(locations[$0..<min($0 + 1000, locations.count)]) }
        return try await Self.translating {
            try await withThrowingTaskGroup(of: Set<String>.self) { group in
                var deleted = Set<String>()
                var next = 0
                func add() {
                    guard next < batches.count else { return }
                    let batch = batches[next]
                    next += 1
                    group.addTask {
                        let failed = try await self.client.deleteObjects(batch.map { self.prefix + $0 })
                        if !failed.isEmpty {
                            Self.logger.warning(
                                "S3 did not delete some objects", metadata: ["count": "\(failed.count)", "codes": "\(Set(failed.values))"]
                            )
                        }
                        return Set(batch.filter { failed[self.prefix + $0] == nil })
                    }
                }
                for _ in 0..<4 { add() }
                while let done = try await group.next() {
                    deleted.formUnion(done)
                    add()
                }
                return deleted
            }
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
    static let logger = Logger(label: "pierone.blob.s3")

    static func translating<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as RegistryError {
            throw error
        } catch let error as CancellationError {
            throw error
        } catch {
            // The storage's own words (S3 error codes, bucket and key names) go to the log only.
            let transient = S3Client.isTransient(error)
            Self.logger.error("S3 request failed", metadata: ["error": "\(error)", "transient": "\(transient)"])
            if transient {
                throw RegistryError(.unavailable, "blob storage is unavailable; try again shortly")
            }
            throw RegistryError(.unknown, "blob storage failed")
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
