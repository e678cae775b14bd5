import Contracts
import Crypto
import Foundation
import InMemory
import NIOCore
import Registry
import Synchronization
import Testing

/// The gateway's copies of small blobs: what is held (whole blobs only), its bounds, and that a
/// pull answered from it still needs the repository's link.
@Suite struct BlobCacheTests {
    let repository = RepositoryName("team/app")!

    static func digest(_ bytes: [UInt8]) -> Contracts.Digest {
        Contracts.Digest("sha256:" + SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined())!
    }

    static func blob(_ bytes: [UInt8]) -> BlobRecord {
        BlobRecord(digest: Self.digest(bytes), size: Int64(bytes.count), location: "blobs/\(Self.digest(bytes).hex)")
    }

    static func bytes(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) }
    }

    /// Stores `bytes` through a capture, in chunks of `chunk`.
    static func hold(_ bytes: [UInt8], in cache: BlobCache, chunk: Int = 1000) {
        guard let capture = cache.capture(expecting: Int64(bytes.count)) else { return }
        for start in stride(from: 0, to: bytes.count, by: chunk) {
            capture.append(ByteBuffer(bytes: bytes[start..<min(start + chunk, bytes.count)]))
        }
        capture.finish(as: Self.blob(bytes))
    }

    static func body(_ bytes: [UInt8], chunk: Int = 1000) -> AsyncStream<ByteBuffer> {
        AsyncStream { continuation in
            for start in stride(from: 0, to: bytes.count, by: chunk) {
                continuation.yield(ByteBuffer(bytes: bytes[start..<min(start + chunk, bytes.count)]))
            }
            continuation.finish()
        }
    }

    /// A monolithic push: the closing request carries the whole blob.
    func pushed(_ bytes: [UInt8], _ registry: RegistryService, length: Int64? = nil) async throws -> BlobRecord {
        let session = try await registry.startUpload(for: self.repository, algorithm: .sha256, client: "test")
        return try await registry.completeUpload(
            session.id, in: self.repository, digest: Self.digest(bytes), appending: Self.body(bytes), at: nil, length: length
        )
    }

    static func read(_ registry: RegistryService, _ blob: BlobRecord, range: ClosedRange<Int64>? = nil) async throws -> [UInt8] {
        var read = ByteBuffer()
        try await registry.open(blob, range: range).forEach { read.writeImmutableBuffer($0) }
        return Array(read.readableBytesView)
    }

    @Test func theCacheStaysWithinItsBudgetAndEvictsTheLeastRecentlyUsed() {
        let evicted = Atomic<Int>(0)
        var observer = BlobCache.Observer()
        observer.evicted = { evicted.add($0, ordering: .relaxed) }
        let budget = 64 * 1024
        let cache = BlobCache(budget: budget, protection: .zero, observer: observer)
        #expect(cache.maximumEntry == budget / 8)
        let kept = Self.bytes(4000, seed: -1)
        Self.hold(kept, in: cache)
        for index in 0..<200 {
            Self.hold(Self.bytes(3000, seed: index), in: cache)
            #expect(cache.size.bytes <= budget)
            // Used all along: never the least recently used.
            #expect(cache.bytes(of: Self.blob(kept), range: nil).map { Array($0.readableBytesView) } == kept)
        }
        #expect(evicted.load(ordering: .relaxed) > 150)
        #expect(cache.bytes(of: Self.blob(Self.bytes(3000, seed: 0)), range: nil) == nil, "the oldest went first")
        #expect(cache.bytes(of: Self.blob(Self.bytes(3000, seed: 199)), range: nil) != nil)
        #expect(cache.size.collecting == 0, "every capture released what it reserved")
    }

    /// A cache smaller than a cycle of reads keeps the blobs it took first while they are in use,
    /// instead of evicting each just before it is asked for again (plain LRU answers nothing then);
    /// once they have not been used for `protection`, new blobs take their place.
    @Test func recentlyUsedBlobsAreNotEvictedForNewOnes() async throws {
        let cache = BlobCache(budget: 64 * 1024, protection: .milliseconds(300))
        let blobs = (0..<40).map { Self.bytes(3000, seed: 100 + $0) }
        for _ in 0..<2 {
            for bytes in blobs where cache.bytes(of: Self.blob(bytes), range: nil) == nil { Self.hold(bytes, in: cache) }
        }
        let held = blobs.filter { cache.bytes(of: Self.blob($0), range: nil) != nil }
        let fit = (64 * 1024) / (4096 + 160)
        #expect(held.count == fit, "as many as fit")
        #expect(held == Array(blobs.prefix(held.count)), "the first ones, kept through the second cycle")
        #expect(cache.capture(expecting: 3000) == nil, "no room: a push passes its bytes on without a copy")
        try await Task.sleep(for: .milliseconds(400))
        Self.hold(blobs[39], in: cache)
        #expect(cache.bytes(of: Self.blob(blobs[39]), range: nil) != nil, "unused for longer than the protection: replaced")
        #expect(cache.bytes(of: Self.blob(blobs[0]), range: nil) == nil, "the least recently used went")
        #expect(cache.size.bytes <= 64 * 1024)
    }

    /// A blob that would need more room than the blobs outside the protection free is refused
    /// without evicting any of them.
    @Test func aBlobThatCannotBeHeldEvictsNothing() async throws {
        let refused = Atomic<Int>(0)
        var observer = BlobCache.Observer()
        observer.refused = { refused.add(1, ordering: .relaxed) }
        let cache = BlobCache(budget: 64 * 1024, protection: .milliseconds(300), observer: observer)
        let old = Self.bytes(3000, seed: 200)
        Self.hold(old, in: cache)
        try await Task.sleep(for: .milliseconds(400))
        for index in 0..<14 { Self.hold(Self.bytes(3000, seed: 201 + index), in: cache) }
        #expect(cache.size.entries == 15)
        // 5000 bytes take a buffer of 8192: two entries' room, and only the old one may go.
        let large = Self.bytes(5000, seed: 300)
        #expect(cache.capture(expecting: 5000) == nil)
        #expect(refused.load(ordering: .relaxed) == 1)
        let unknown = try #require(cache.capture(), "of unknown size: collected, then refused")
        unknown.append(ByteBuffer(bytes: large))
        #expect(unknown.finish(as: Self.blob(large)) != nil)
        #expect(refused.load(ordering: .relaxed) == 2)
        #expect(cache.bytes(of: Self.blob(large), range: nil) == nil)
        #expect(cache.bytes(of: Self.blob(old), range: nil) != nil, "nothing was evicted for it")
        #expect(cache.size.entries == 15 && cache.size.collecting == 0)
    }

    /// A push that announces a blob larger than the largest entry is not collected; one that
    /// announces a small one reserves only what has arrived.
    @Test func aPushReservesAsItsBytesArrive() async throws {
        let cache = BlobCache(budget: 64 * 1024)
        let registry = RegistryService(metadata: InMemoryMetadata(), blobs: InMemoryBlobs(), blobCache: cache)
        let large = Self.bytes(cache.maximumEntry + 1, seed: 400)
        _ = try await self.pushed(large, registry, length: Int64(large.count))
        #expect(cache.size.entries == 0)
        // A body that has sent 1000 of an announced 8000 bytes holds a reservation of 1024.
        let session = try await registry.startUpload(for: self.repository, algorithm: .sha256, client: "test")
        let (body, continuation) = AsyncStream<ByteBuffer>.makeStream()
        continuation.yield(ByteBuffer(bytes: Self.bytes(1000, seed: 401)))
        let push = Task {
            try await registry.completeUpload(
                session.id, in: self.repository, digest: Self.digest([0]), appending: body, at: nil, length: 8000
            )
        }
        #expect(await Self.eventually { cache.size.collecting == 1024 })
        continuation.finish()
        await #expect(throws: RegistryError.self) { _ = try await push.value }
        #expect(await Self.eventually { cache.size.collecting == 0 })
    }

    /// Only a whole blob is held: not a read that ended short, not one past the largest entry.
    @Test func onlyWholeBlobsAreHeld() {
        let cache = BlobCache(budget: 64 * 1024)
        let bytes = Self.bytes(3000, seed: 1)
        let short = cache.capture(expecting: 3000)!
        short.append(ByteBuffer(bytes: bytes[0..<2999]))
        short.finish(as: Self.blob(bytes))
        #expect(cache.size.entries == 0)
        #expect(cache.capture(expecting: Int64(cache.maximumEntry) + 1) == nil, "known to be too large")
        // Of unknown size, the collection ends once it passes the largest entry.
        let large = Self.bytes(cache.maximumEntry + 1, seed: 2)
        let unknown = cache.capture()!
        unknown.append(ByteBuffer(bytes: large[0..<cache.maximumEntry]))
        #expect(cache.size.collecting == cache.maximumEntry)
        unknown.append(ByteBuffer(bytes: large[cache.maximumEntry...]))
        #expect(cache.size.collecting == 0, "given up: the reservation is released at once")
        unknown.finish(as: Self.blob(large))
        #expect(cache.size.entries == 0)
        // A held blob with another size under the same digest (a lying record) is not answered.
        Self.hold(bytes, in: cache)
        let wrongSize = BlobRecord(digest: Self.blob(bytes).digest, size: 2999, location: "x")
        #expect(cache.bytes(of: wrongSize, range: nil) == nil)
        #expect(cache.bytes(of: Self.blob(bytes), range: 10...19).map { Array($0.readableBytesView) } == Array(bytes[10...19]))
        #expect(BlobCache(budget: 0).capture() == nil)
        // Buffers are counted at their capacity, a power of two, and so is the largest entry.
        #expect(cache.size.bytes == 4096 + 160, "3000 bytes in a buffer of 4096")
        #expect(BlobCache(budget: 10 << 20).maximumEntry == 1 << 20)
        #expect(BlobCache(budget: 1 << 30).maximumEntry == BlobCache.largestEntry)
    }

    /// Reads and pushes in flight collect at most `budget` bytes in all; a capture dropped
    /// unfinished (a client gone) gives its bytes back.
    @Test func bytesBeingCollectedAreBounded() {
        let budget = 64 * 1024
        let cache = BlobCache(budget: budget)
        let chunk = ByteBuffer(bytes: Self.bytes(4096, seed: 3))
        var captures: [BlobCache.Capture] = []
        for _ in 0..<40 {
            let capture = cache.capture()!
            capture.append(chunk)
            captures.append(capture)
        }
        #expect(cache.size.collecting == budget, "16 of the 40 collect, the rest gave up")
        captures.removeAll()
        #expect(cache.size.collecting == 0)
    }

    /// A monolithic push leaves the blob in memory: the pull that follows makes no read call.
    /// Chunked pushes are held after their first pull. Ranges come from memory too.
    @Test func aPushedOrPulledSmallBlobIsServedWithoutAReadCall() async throws {
        let blobs = InMemoryBlobs(chunkSize: 700)
        let cache = BlobCache(budget: 1 << 20)
        let registry = RegistryService(metadata: InMemoryMetadata(), blobs: blobs, blobCache: cache)
        let bytes = Self.bytes(5000, seed: 4)
        let blob = try await self.pushed(bytes, registry, length: 5000)
        #expect(cache.size.entries == 1)
        let pulled = try #require(try await registry.pull(blob.digest, in: self.repository))
        #expect(try await Self.read(registry, pulled.blob) == bytes)
        #expect(try await Self.read(registry, pulled.blob, range: 4990...4999) == Array(bytes[4990...4999]))
        #expect(blobs.count("read") == 0)

        // PATCH, then a PUT without a body: the PUT saw no bytes, so nothing is held yet.
        let chunked = Self.bytes(3000, seed: 5)
        let second = try await registry.startUpload(for: self.repository, algorithm: .sha256, client: "test")
        _ = try await registry.appendUpload(second.id, in: self.repository, at: nil, body: Self.body(chunked))
        let other = try await registry.completeUpload(
            second.id, in: self.repository, digest: Self.digest(chunked), appending: nil as AsyncStream<ByteBuffer>?, at: nil
        )
        #expect(cache.size.entries == 1)
        #expect(try await Self.read(registry, other) == chunked)
        #expect(blobs.count("read") == 1)
        #expect(try await Self.read(registry, other) == chunked)
        #expect(blobs.count("read") == 1, "held after its first whole read")
    }

    /// A PUT that carries only the last part of a blob is not the blob: nothing is held.
    @Test func aClosingChunkAfterEarlierOnesIsNotHeld() async throws {
        let cache = BlobCache(budget: 1 << 20)
        let registry = RegistryService(metadata: InMemoryMetadata(), blobs: InMemoryBlobs(), blobCache: cache)
        let bytes = Self.bytes(3000, seed: 6)
        let session = try await registry.startUpload(for: self.repository, algorithm: .sha256, client: "test")
        _ = try await registry.appendUpload(session.id, in: self.repository, at: nil, body: Self.body(Array(bytes[0..<1000])))
        let blob = try await registry.completeUpload(
            session.id, in: self.repository, digest: Self.digest(bytes), appending: Self.body(Array(bytes[1000...])), at: 1000
        )
        #expect(blob.size == 3000 && cache.size.entries == 0)
        // A push whose digest does not match stores nothing either.
        let wrong = try await registry.startUpload(for: self.repository, algorithm: .sha256, client: "test")
        await #expect(throws: RegistryError.self) {
            _ = try await registry.completeUpload(
                wrong.id, in: self.repository, digest: Self.digest([1, 2, 3]), appending: Self.body(bytes), at: nil
            )
        }
        #expect(cache.size.entries == 0 && cache.size.collecting == 0)
    }

    /// A small blob is read in full before its answer starts: a read that ends short fails then
    /// (a 502 before any header, where a stream would be cut), and a cancelled one stores nothing.
    @Test func aReadThatEndsShortOrIsCancelledIsNotHeld() async throws {
        let blobs = InMemoryBlobs(chunkSize: 100)
        let cache = BlobCache(budget: 1 << 20)
        let registry = RegistryService(metadata: InMemoryMetadata(), blobs: blobs, blobCache: cache)
        let bytes = Self.bytes(3000, seed: 7)
        let session = try await registry.startUpload(for: self.repository, algorithm: .sha256, client: "test")
        _ = try await registry.appendUpload(session.id, in: self.repository, at: nil, body: Self.body(bytes))
        let blob = try await registry.completeUpload(
            session.id, in: self.repository, digest: Self.digest(bytes), appending: nil as AsyncStream<ByteBuffer>?, at: nil
        )
        let lying = BlobRecord(digest: blob.digest, size: 3001, location: blob.location)
        await #expect(throws: RegistryError.self) { _ = try await registry.open(lying, range: nil) }
        #expect(cache.size.entries == 0 && cache.size.collecting == 0)
        let long = BlobRecord(digest: blob.digest, size: 2999, location: blob.location)
        await #expect(throws: RegistryError.self, "more bytes than the record says") { _ = try await registry.open(long, range: nil) }
        #expect(cache.size.entries == 0 && cache.size.collecting == 0)
        blobs.stallReads(true)
        let waiting = Task { try await registry.open(blob, range: nil) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(cache.size.collecting == 4096, "the read reserved its buffer")
        waiting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiting.value }
        #expect(cache.size.entries == 0)
        #expect(await Self.eventually { cache.size.collecting == 0 }, "the cancelled read released its reservation")
        blobs.stallReads(false)
        #expect(try await Self.read(registry, blob) == bytes)
        #expect(cache.size.entries == 1)
    }

    /// Ranges are answered from held bytes but neither fill the cache nor count as misses.
    @Test func rangesAreServedFromMemoryButNeverCountedAsMisses() async throws {
        let misses = Atomic<Int>(0)
        let hits = Atomic<Int>(0)
        var observer = BlobCache.Observer()
        observer.miss = { misses.add(1, ordering: .relaxed) }
        observer.hit = { hits.add(1, ordering: .relaxed) }
        let blobs = InMemoryBlobs(chunkSize: 100)
        let cache = BlobCache(budget: 1 << 20, observer: observer)
        let registry = RegistryService(metadata: InMemoryMetadata(), blobs: blobs, blobCache: cache)
        let bytes = Self.bytes(3000, seed: 9)
        let session = try await registry.startUpload(for: self.repository, algorithm: .sha256, client: "test")
        _ = try await registry.appendUpload(session.id, in: self.repository, at: nil, body: Self.body(bytes))
        let blob = try await registry.completeUpload(
            session.id, in: self.repository, digest: Self.digest(bytes), appending: nil as AsyncStream<ByteBuffer>?, at: nil
        )
        #expect(try await Self.read(registry, blob, range: 5...9) == Array(bytes[5...9]))
        #expect(misses.load(ordering: .relaxed) == 0 && cache.size.entries == 0)
        #expect(try await Self.read(registry, blob) == bytes)
        #expect(misses.load(ordering: .relaxed) == 1 && cache.size.entries == 1)
        #expect(try await Self.read(registry, blob, range: 2990...2999) == Array(bytes[2990...2999]))
        #expect(blobs.count("read") == 2, "the range after the whole read came from memory")
        #expect(hits.load(ordering: .relaxed) == 0, "only whole reads count")
    }

    /// Held bytes are used only after the repository's link: an unlinked blob is unknown there.
    @Test func heldBytesStillNeedTheRepositorysLink() async throws {
        let cache = BlobCache(budget: 1 << 20)
        let registry = RegistryService(metadata: InMemoryMetadata(), blobs: InMemoryBlobs(), blobCache: cache)
        let bytes = Self.bytes(2000, seed: 8)
        let blob = try await self.pushed(bytes, registry)
        #expect(cache.size.entries == 1)
        #expect(try await registry.pull(blob.digest, in: RepositoryName("team/other")!) == nil)
        try await registry.unlinkBlob(blob.digest, from: self.repository)
        #expect(try await registry.pull(blob.digest, in: self.repository) == nil)
    }

    /// Counts the misses an observer reports as answered by another request's work.
    final class SharedCount: Sendable {
        private let count = Atomic<Int>(0)
        var value: Int { self.count.load(ordering: .relaxed) }

        /// An observer that counts into this.
        var observer: CacheObserver {
            var observer = CacheObserver()
            observer.shared = { self.count.add(1, ordering: .relaxed) }
            return observer
        }
    }

    /// A registry over `blobs` with a 1 MiB cache, and a blob pushed in chunks (nothing held).
    func chunkedPush(
        _ bytes: [UInt8], blobs: InMemoryBlobs, observer: BlobCache.Observer? = nil, cache: BlobCache? = nil
    ) async throws -> (RegistryService, BlobRecord) {
        let registry = RegistryService(
            metadata: InMemoryMetadata(), blobs: blobs,
            blobCache: cache ?? BlobCache(budget: 1 << 20, observer: observer ?? BlobCache.Observer())
        )
        let session = try await registry.startUpload(for: self.repository, algorithm: .sha256, client: "test")
        _ = try await registry.appendUpload(session.id, in: self.repository, at: nil, body: Self.body(bytes))
        let blob = try await registry.completeUpload(
            session.id, in: self.repository, digest: Self.digest(bytes), appending: nil as AsyncStream<ByteBuffer>?, at: nil
        )
        return (registry, blob)
    }

    /// Every node of a rollout pulls the same new layers at once: misses of one blob at the same
    /// time make one read of the blob service, and every request gets the whole blob.
    @Test func concurrentMissesOfOneBlobShareOneRead() async throws {
        let blobs = InMemoryBlobs(chunkSize: 700)
        let bytes = Self.bytes(5000, seed: 11)
        let shared = SharedCount()
        let (registry, blob) = try await self.chunkedPush(bytes, blobs: blobs, observer: shared.observer)
        blobs.holdReads(true)
        let readers = (0..<8).map { _ in Task { try await Self.read(registry, blob) } }
        #expect(await Self.eventually { blobs.count("read") >= 1 })
        try await Task.sleep(for: .milliseconds(100))
        #expect(blobs.count("read") == 1, "the others wait for the read in flight")
        blobs.holdReads(false)
        for reader in readers { #expect(try await reader.value == bytes) }
        #expect(blobs.count("read") == 1)
        #expect(shared.value == 7)
        #expect(try await Self.read(registry, blob) == bytes)
        #expect(blobs.count("read") == 1, "held afterwards")
    }

    /// A waiting request whose client goes away stops waiting; the shared read goes on. When the
    /// shared read is given up (its own client went away), a waiting request reads for itself.
    @Test func waitersAndTheSharedReadEndApart() async throws {
        let blobs = InMemoryBlobs(chunkSize: 700)
        let bytes = Self.bytes(4000, seed: 12)
        let shared = SharedCount()
        let (registry, blob) = try await self.chunkedPush(bytes, blobs: blobs, observer: shared.observer)
        blobs.holdReads(true)
        let leader = Task { try await Self.read(registry, blob) }
        #expect(await Self.eventually { blobs.count("read") == 1 })
        let waiter = Task { try await Self.read(registry, blob) }
        try await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        await #expect(throws: CancellationError.self, "it stops waiting while the read is held") { _ = try await waiter.value }
        blobs.holdReads(false)
        #expect(try await leader.value == bytes)
        #expect(blobs.count("read") == 1 && shared.value == 0)

        let other = Self.bytes(3000, seed: 13)
        let (registry2, blob2) = try await self.chunkedPush(other, blobs: blobs, observer: shared.observer)
        let before = blobs.count("read")
        blobs.holdReads(true)
        let givenUp = Task { try await Self.read(registry2, blob2) }
        #expect(await Self.eventually { blobs.count("read") == before + 1 })
        let survivor = Task { try await Self.read(registry2, blob2) }
        try await Task.sleep(for: .milliseconds(50))
        givenUp.cancel()
        await #expect(throws: CancellationError.self) { _ = try await givenUp.value }
        #expect(await Self.eventually { blobs.count("read") == before + 2 }, "the waiter began a read of its own")
        blobs.holdReads(false)
        #expect(try await survivor.value == other)
        #expect(shared.value == 0, "the waiter read for itself")
    }

    /// A cache with no room (all it holds used within the protection) still shares one read among
    /// the requests of a burst; the bytes are answered and not kept.
    @Test func aBurstSharesOneReadWhenTheCacheHasNoRoom() async throws {
        let cache = BlobCache(budget: 64 * 1024, protection: .seconds(600))
        for index in 0..<15 { Self.hold(Self.bytes(3000, seed: 400 + index), in: cache) }
        #expect(cache.capture(expecting: 3000) == nil, "no room")
        let blobs = InMemoryBlobs(chunkSize: 700)
        let bytes = Self.bytes(3000, seed: 450)
        let (registry, blob) = try await self.chunkedPush(bytes, blobs: blobs, cache: cache)
        blobs.holdReads(true)
        let readers = (0..<6).map { _ in Task { try await Self.read(registry, blob) } }
        #expect(await Self.eventually { blobs.count("read") >= 1 })
        try await Task.sleep(for: .milliseconds(100))
        blobs.holdReads(false)
        for reader in readers { #expect(try await reader.value == bytes) }
        #expect(blobs.count("read") == 1)
        #expect(cache.bytes(of: blob, range: nil) == nil, "not kept")
        #expect(cache.size.entries == 15 && cache.size.collecting == 0)
        // Not kept, the bytes are still counted against the bound on bytes being collected while
        // they are answered: slow clients cannot hold more than that bound allows.
        do {
            let answer = try await registry.open(blob, range: nil)
            withExtendedLifetime(answer) { #expect(cache.size.collecting == 4096) }
        }
        #expect(cache.size.collecting == 0)
        // Answers still being written: 16 of 4096 bytes fill the bound (the budget), the 17th streams.
        let reads = blobs.count("read")
        var answers: [BlobBytes] = []
        for _ in 0..<17 { answers.append(try await registry.open(blob, range: nil)) }
        #expect(cache.size.collecting == 64 * 1024)
        #expect(blobs.count("read") == reads + 17, "one after the other: nothing to share")
        answers.removeAll()
        #expect(cache.size.collecting == 0)
    }

    /// A read that ends after another one stored the same blob answers from the held copy: no
    /// second copy escapes the bounds.
    @Test func aSecondReadOfAHeldBlobAnswersFromTheHeldCopy() throws {
        let cache = BlobCache(budget: 1 << 20)
        let bytes = Self.bytes(3000, seed: 15)
        let capture = try #require(cache.capture(expecting: 3000, evenIfNotHeld: true))
        capture.append(ByteBuffer(bytes: bytes))
        Self.hold(bytes, in: cache)
        let read = try #require(capture.finishKeepingReservation(as: Self.blob(bytes)))
        let held = try #require(cache.bytes(of: Self.blob(bytes), range: nil))
        #expect(read.reservation == nil && cache.size.collecting == 0)
        #expect(read.bytes.withUnsafeReadableBytes { $0.baseAddress } == held.withUnsafeReadableBytes { $0.baseAddress })
    }

    /// One storage hiccup does not stall every later pull of the blob: a request waits at most
    /// `waitedFor` for a read in flight, and a read older than `sharedFor` is not joined.
    @Test func aStalledReadIsWaitedForOnlySoLong() async throws {
        let blobs = InMemoryBlobs(chunkSize: 700)
        let cache = BlobCache(budget: 1 << 20, sharedFor: .milliseconds(150), waitedFor: .milliseconds(100))
        let bytes = Self.bytes(3000, seed: 14)
        let (registry, blob) = try await self.chunkedPush(bytes, blobs: blobs, cache: cache)
        blobs.holdReads(true)
        let stalled = Task { try await Self.read(registry, blob) }
        #expect(await Self.eventually { blobs.count("read") == 1 })
        let waiter = Task { try await Self.read(registry, blob) }
        #expect(await Self.eventually { blobs.count("read") == 2 }, "it gave up waiting and read for itself")
        try await Task.sleep(for: .milliseconds(200))
        let late = Task { try await Self.read(registry, blob) }
        #expect(await Self.eventually { blobs.count("read") >= 3 }, "a read older than sharedFor is not joined")
        blobs.holdReads(false)
        for task in [stalled, waiter, late] { #expect(try await task.value == bytes) }
    }

    static func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<500 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }
}
