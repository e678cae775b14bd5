import AsyncAlgorithms
import Contracts
import NIOCore
import Synchronization

/// Pulling blobs: the lookup, the redirect decision and the read — one metadata call and one
/// blob call per GET.
extension RegistryService {
    /// How a blob GET is answered.
    package enum PullAnswer: Sendable, Equatable {
        /// Stream the blob's bytes through the registry.
        case stream(BlobRecord)
        /// Redirect the client to the storage itself (a presigned S3 URL).
        case redirect(BlobRecord, url: String)

        package var blob: BlobRecord {
            switch self {
            case .stream(let blob), .redirect(let blob, _): blob
            }
        }
    }

    /// The blob `digest` of `repository` and how to serve it; nil when the repository does not
    /// link it. `redirect: false` (a HEAD) never asks the storage.
    ///
    /// The storage's redirect setting is fixed while it runs: once it has answered "no URL", it is
    /// not asked again, so a streamed GET costs the lookup here and the read (`open`) only.
    package func pull(_ digest: Digest, in repository: RepositoryName, redirect wanted: Bool = true) async throws -> PullAnswer? {
        guard let blob = try await self.lookUpBlob(digest, in: repository) else { return nil }
        guard wanted, !self.redirects.known else { return .stream(blob) }
        guard let url = try await self.blobs.externalURL(for: blob) else {
            self.redirects.learnNever()
            return .stream(blob)
        }
        return .redirect(blob, url: url)
    }

    private func lookUpBlob(_ digest: Digest, in repository: RepositoryName) async throws -> BlobRecord? {
        guard let cache = self.cache else { return try await self.metadata.blob(digest, in: repository) }
        if let blob = cache.blob(digest, in: repository) { return blob }
        let ticket = cache.ticket(repository)
        // Shared as manifest lookups are (`shared`): a rollout's nodes pull the same layers.
        let key = CachedLookup(repository: repository, item: "blob " + digest.description, ticket: ticket)
        return try await self.shared(self.blobLookups, key, cache: cache) {
            guard let blob = try await self.metadata.blob(digest, in: repository) else { return nil }
            cache.store(blob, in: repository, ticket: ticket)
            return blob
        }
    }

    /// Starts reading `blob` (or the inclusive `range` of it) and returns once the storage has
    /// delivered its first bytes or failed: an unreachable blob service or storage is an error the
    /// caller can still answer with a status (503), not a response cut after its headers.
    ///
    /// A blob in the `blobCache` is answered from memory. A whole blob small enough to be held is
    /// read from the storage in full first, at the storage's speed rather than the client's, then
    /// answered from memory; a read that ends short fails before any header is sent. The cache
    /// keeps it if it has room (it may evict only blobs unused for its protection); if not, the
    /// bytes still count against the bound on bytes being collected until the answers end. Past
    /// that bound, it streams.
    ///
    /// Misses of one blob at the same time share one read (`BlobCache.join`): every node of a
    /// rollout asks for the same new layers at once, and the blob service reads each once per
    /// gateway instead of once per node. A request waits at most the cache's `waitedFor` for a read
    /// begun at most its `sharedFor` before it; when that read fails, is cancelled or takes
    /// longer, it tries once more (and may lead that read), then streams.
    package func open(_ blob: BlobRecord, range: ClosedRange<Int64>?) async throws -> BlobBytes {
        guard let blobCache else { return try await self.stream(blob, range: range) }
        if let held = blobCache.bytes(of: blob, range: range) { return BlobBytes(held) }
        guard range == nil, blobCache.admits(blob.size) else { return try await self.stream(blob, range: range) }
        for attempt in 0..<2 {
            // Held meanwhile by a read this request did not wait for (one older than `sharedFor`).
            if attempt > 0, let held = blobCache.bytes(of: blob, range: nil, counting: false) { return BlobBytes(held) }
            switch blobCache.join(blob.digest) {
            case .follow(let fill):
                if let read = try await fill.value(waitingAtMost: blobCache.waitedFor),
                   Int64(read.bytes.readableBytes) == blob.size
                {
                    blobCache.observer.shared()
                    return BlobBytes(read.bytes, keeping: read.reservation)
                }
            case .lead(let fill):
                let read: BlobCache.Read?
                do {
                    read = try await self.fill(blob, into: blobCache)
                } catch {
                    fill.finish(nil)
                    throw error
                }
                fill.finish(read)
                guard let read else { return try await self.stream(blob, range: nil) }
                return BlobBytes(read.bytes, keeping: read.reservation)
            }
        }
        return try await self.stream(blob, range: nil)
    }

    private func stream(_ blob: BlobRecord, range: ClosedRange<Int64>?) async throws -> BlobBytes {
        try await BlobBytes.start { sink in try await self.blobs.read(blob, range: range, into: sink) }
    }

    /// Reads the whole small `blob` into memory and the cache (when it has room; answered either
    /// way, to the requests waiting on this read too); nil past the bound on bytes being collected.
    private func fill(_ blob: BlobRecord, into blobCache: BlobCache) async throws -> BlobCache.Read? {
        guard let capture = blobCache.capture(expecting: blob.size, evenIfNotHeld: true) else { return nil }
        var received: Int64 = 0
        try await self.blobs.read(blob, range: nil) { chunk in
            received += Int64(chunk.readableBytes)
            guard received <= blob.size else {
                throw RegistryError(.badGateway, "the storage returned more than the \(blob.size) bytes of \(blob.digest)")
            }
            capture.append(chunk)
            try Task.checkCancellation()
        }
        guard let read = capture.finishKeepingReservation(as: blob) else {
            throw RegistryError(.badGateway, "the storage returned \(received) of \(blob.size) bytes")
        }
        return read
    }
}

/// The bytes of a blob read that has begun. The read runs in a task of its own and hands its
/// chunks over one at a time (it waits while the consumer writes, so at most one chunk is in
/// flight); dropping the value, or a consumer that stops, ends the read.
package struct BlobBytes: Sendable {
    /// The read's first chunk; nil when the read ended without bytes.
    private let first: ByteBuffer?
    /// The rest of the read; nil for bytes that were all in memory.
    private let reading: Reading?
    /// What counts bytes in memory that the cache did not keep, while they are answered.
    private let reservation: BlobCache.Reservation?

    /// Bytes already in memory, handed over as one chunk (none for an empty blob).
    init(_ bytes: ByteBuffer, keeping reservation: BlobCache.Reservation? = nil) {
        self.first = bytes.readableBytes > 0 ? bytes : nil
        self.reading = nil
        self.reservation = reservation
    }

    private init(first: ByteBuffer?, reading: Reading) {
        self.first = first
        self.reading = reading
        self.reservation = nil
    }

    private final class Reading: Sendable {
        let channel = AsyncThrowingChannel<ByteBuffer, any Error>()
        let task = Mutex<Task<Void, Never>?>(nil)

        deinit {
            self.task.withLock { $0?.cancel() }
            self.channel.finish()
        }
    }

    static func start(
        _ read: @escaping @Sendable (_ sink: (ByteBuffer) async throws -> Void) async throws -> Void
    ) async throws -> BlobBytes {
        let reading = Reading()
        let channel = reading.channel
        let task = Task {
            do {
                try await read { chunk in
                    await channel.send(chunk)
                    try Task.checkCancellation()
                }
                channel.finish()
            } catch {
                channel.fail(error)
            }
        }
        reading.task.withLock { $0 = task }
        let first = try await withTaskCancellationHandler {
            var iterator = channel.makeAsyncIterator()
            return try await iterator.next()
        } onCancel: {
            task.cancel()
        }
        // A cancelled wait also ends with nil: that is not an empty blob.
        try Task.checkCancellation()
        return BlobBytes(first: first, reading: reading)
    }

    /// Hands every chunk to `body`, the first one included; a throwing `body` ends the read, and
    /// so does cancelling the calling task (which throws rather than end the bytes early).
    package func forEach(_ body: (ByteBuffer) async throws -> Void) async throws {
        guard let reading = self.reading else {
            if let first = self.first { try await body(first) }
            return
        }
        defer { reading.task.withLock { $0?.cancel() } }
        guard let first = self.first else { return }
        try await withTaskCancellationHandler {
            try await body(first)
            for try await chunk in reading.channel {
                try await body(chunk)
            }
        } onCancel: {
            reading.task.withLock { $0?.cancel() }
        }
        try Task.checkCancellation()
    }
}
