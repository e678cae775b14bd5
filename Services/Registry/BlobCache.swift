import Contracts
import NIOCore
import Synchronization

/// Small blobs a gateway keeps in memory (`BLOB_CACHE_MB`), so that pulling them again costs no
/// call to the blob service: the config blob every node of a deploy pulls, the small layers a CI
/// job pushes and its next step pulls. Least recently used evicted first, within a byte budget.
///
/// Blobs are content-addressed, so what is held never goes stale and needs no invalidation: a pull
/// still asks the (cached) metadata whether the repository links the digest before these bytes
/// are used, so a deleted link answers 404 as before, and a digest pushed again is the same bytes.
/// What is stored is exactly a blob's bytes: a pull's read of the whole blob that delivered
/// `size` bytes, or a push whose closing request carried the whole blob and whose digest the blob
/// service verified.
///
/// Bounded twice, counting buffers at their capacity (a size rounded up to a power of two): at
/// most `budget` bytes held, and at most `budget` bytes more being collected by reads and pushes in
/// flight (`Capture`) or read but not held and still being answered (`Reservation`); one entry
/// takes at most `maximumEntry` bytes. A response being written keeps a held blob's bytes alive
/// until it ends, evicted meanwhile or not, as a streamed one keeps its chunk.
package final class BlobCache: Sendable {
    package typealias Observer = CacheObserver

    /// The largest entry, whatever the budget.
    package static let largestEntry = 4 << 20
    /// Fixed cost of an entry beyond its bytes: the node, the key, the dictionary's slot.
    static let overhead = 160

    final class Node: RecencyLinked {
        let digest: Digest
        let bytes: ByteBuffer
        /// Counted at the buffer's capacity: what it holds in memory.
        var cost: Int { self.bytes.capacity + BlobCache.overhead }
        /// Toward the newest (strong: the list holds its nodes from the oldest on) and the oldest.
        var newer: Node?
        unowned var older: Node?
        /// When it was stored or last answered.
        var used: ContinuousClock.Instant

        init(digest: Digest, bytes: ByteBuffer, used: ContinuousClock.Instant) {
            self.digest = digest
            self.bytes = bytes
            self.used = used
        }
    }

    struct State: ~Copyable {
        var nodes: [Digest: Node] = [:]
        var recency = RecencyList<Node>()
        var bytes = 0
        /// Bytes being collected by captures in flight.
        var collecting = 0

        mutating func remove(_ node: Node) {
            self.recency.unlink(node)
            self.nodes[node.digest] = nil
            self.bytes -= node.cost
        }
    }

    package let budget: Int
    /// Blobs larger than this are never held: the largest power of two within `largestEntry` and an
    /// eighth of the budget.
    package let maximumEntry: Int
    let observer: Observer
    private let state = Mutex(State())
    /// Whole reads in flight, by digest (`join`).
    private let fills = SharedFlights<Digest, Read>()

    /// How long a blob answered or stored is not evicted to make room for another.
    package let protection: Duration
    /// How long after it began a read is joined, and how long a request waits for it at most.
    package let sharedFor: Duration
    package let waitedFor: Duration

    /// A cache of at most `budget` bytes (0: holds nothing). A blob used within `protection` is not
    /// evicted for a new one: when the least recently used is that recent, the new one is not
    /// held. A plain LRU cache that is smaller than what a client reads in a cycle (a CI job
    /// pulling more layers than fit, in the order it pushed them) evicts every blob just before it
    /// is asked for again and answers nothing; this one keeps what it took first until it has not
    /// been used for `protection`, and answers that part of the cycle from memory.
    ///
    /// A read in flight is joined for `sharedFor` after it began, and waited for at most
    /// `waitedFor` before a request reads for itself: a read of 4 MiB takes milliseconds, and one
    /// storage hiccup must not stall every later pull of the blob on the gateway.
    package init(
        budget: Int, protection: Duration = .seconds(10), sharedFor: Duration = .seconds(1), waitedFor: Duration = .seconds(5),
        observer: Observer = Observer()
    ) {
        self.protection = protection
        self.sharedFor = sharedFor
        self.waitedFor = waitedFor
        self.budget = max(0, budget)
        // A power of two: a ByteBuffer's capacity is its size rounded up to one, so every blob
        // admitted fits a buffer of at most this.
        self.maximumEntry = Self.powerOfTwo(atMost: min(Self.largestEntry, self.budget / 8))
        self.observer = observer
    }

    /// The largest power of two not above `value` (0 for 0).
    static func powerOfTwo(atMost value: Int) -> Int {
        value <= 0 ? 0 : 1 << (Int.bitWidth - 1 - value.leadingZeroBitCount)
    }

    /// The capacity NIO gives a buffer of `count` bytes: the next power of two.
    static func capacity(for count: Int) -> Int {
        count <= 1 ? count : 1 << (Int.bitWidth - (count - 1).leadingZeroBitCount)
    }

    /// What the cache holds now.
    package var size: (bytes: Int, entries: Int, collecting: Int) {
        self.state.withLock { ($0.bytes, $0.nodes.count, $0.collecting) }
    }

    /// Whether a blob of `size` bytes may be held at all.
    package func admits(_ size: Int64) -> Bool {
        size >= 0 && size <= Int64(self.maximumEntry)
    }

    /// The bytes of `blob` (its `range`, inclusive), when held. Whole reads count as a hit or a
    /// miss for blobs small enough to be held (ranges never fill the cache). A range is copied
    /// out: a few bytes answered must not keep the whole blob alive once it is evicted.
    /// `counting: false` for a second look by the same request (not another hit or miss).
    package func bytes(of blob: BlobRecord, range: ClosedRange<Int64>?, counting: Bool = true) -> ByteBuffer? {
        guard self.admits(blob.size) else { return nil }
        let held: ByteBuffer? = self.state.withLock { state in
            guard let node = state.nodes[blob.digest] else { return nil }
            state.recency.touch(node)
            node.used = .now
            return node.bytes
        }
        guard let held, held.readableBytes == blob.size else {
            if range == nil, counting { self.observer.miss() }
            return nil
        }
        guard let range else {
            if counting { self.observer.hit() }
            return held
        }
        guard range.lowerBound >= 0, range.upperBound < blob.size, range.lowerBound <= range.upperBound,
              let slice = held.getSlice(at: held.readerIndex + Int(range.lowerBound), length: Int(range.upperBound - range.lowerBound) + 1)
        else { return nil }
        var copy = ByteBufferAllocator().buffer(capacity: slice.readableBytes)
        copy.writeImmutableBuffer(slice)
        return copy
    }

    /// Starts collecting the bytes of a blob as they pass; nil when the cache holds nothing, or
    /// `expected` (the blob's size, when known) is more than one entry may take or than the bound
    /// on bytes being collected leaves (then reserved at once, as it is allocated at once).
    ///
    /// `evenIfNotHeld`: collect a blob of `expected` bytes even when it would not be held now (only
    /// the bound on bytes being collected applies): a pull's read, which requests waiting for the
    /// same blob share whether it is kept or not (`finish` still returns the bytes).
    package func capture(expecting expected: Int64? = nil, evenIfNotHeld: Bool = false) -> Capture? {
        guard self.maximumEntry > 0 else { return nil }
        guard let expected else { return self.hasRoom(for: 0) ? Capture(cache: self, capacity: 0) : nil }
        guard self.admits(expected) else { return nil }
        let capacity = Self.capacity(for: Int(expected))
        guard evenIfNotHeld || self.hasRoom(for: capacity) else { return nil }
        guard self.reserve(capacity) else { return nil }
        return Capture(cache: self, capacity: capacity)
    }

    /// Reserves `count` more bytes for a capture; false past the bound on bytes in flight.
    fileprivate func reserve(_ count: Int) -> Bool {
        let collecting: Int? = self.state.withLock { state in
            guard state.collecting + count <= self.budget else { return nil }
            state.collecting += count
            return state.collecting
        }
        guard let collecting else {
            self.observer.refused()
            return false
        }
        if count > 0 { self.observer.collecting(collecting) }
        return true
    }

    fileprivate func release(_ count: Int) {
        guard count > 0 else { return }
        self.observer.collecting(self.state.withLock { state in
            state.collecting -= count
            return state.collecting
        })
    }

    /// Holds `bytes` as the blob `digest` (counted at its buffer's capacity), evicting the least
    /// recently used past the budget, unless that was used within `protection`: then `bytes` are
    /// not held.
    /// The bytes held for `digest` afterwards (these, or the copy held before: a digest's bytes
    /// never change); nil when not held.
    @discardableResult
    fileprivate func store(_ bytes: ByteBuffer, as digest: Digest) -> ByteBuffer? {
        guard bytes.capacity <= self.maximumEntry else { return nil }
        let now = ContinuousClock.now
        var refused = false
        var earlier: ByteBuffer?
        let (evicted, held, entries) = self.state.withLock { state -> (Int, Int, Int) in
            if let held = state.nodes[digest] {
                // The same bytes (a digest's never change): used again.
                state.recency.touch(held)
                held.used = now
                earlier = held.bytes
                return (0, state.bytes, state.nodes.count)
            }
            let node = Node(digest: digest, bytes: bytes, used: now)
            let cost = node.cost
            guard Self.freeable(in: state, now: now, protection: self.protection) >= state.bytes + cost - self.budget else {
                // Not held; nothing is evicted for it either.
                refused = true
                return (0, state.bytes, state.nodes.count)
            }
            var evicted = 0
            while state.bytes + cost > self.budget, let oldest = state.recency.oldest {
                state.remove(oldest)
                evicted += 1
            }
            state.nodes[digest] = node
            state.recency.pushNewest(node)
            state.bytes += cost
            return (evicted, state.bytes, state.nodes.count)
        }
        if refused { self.observer.refused() }
        if evicted > 0 { self.observer.evicted(evicted) }
        self.observer.size(held, entries)
        return refused ? nil : earlier ?? bytes
    }

    /// Bytes that evicting every blob unused for `protection` would free, counted from the least
    /// recently used on (they are in order of use: the first one too recent ends the count).
    private static func freeable(in state: borrowing State, now: ContinuousClock.Instant, protection: Duration) -> Int {
        var freeable = 0
        var node = state.recency.oldest
        while let candidate = node, now - candidate.used >= protection {
            freeable += candidate.cost
            node = candidate.newer
        }
        return freeable
    }

    /// Whether a blob of `capacity` bytes would be held now (there is room, or enough of what is
    /// held is old enough to give it up): a capture that could not be held is not begun, and is
    /// counted as refused.
    private func hasRoom(for capacity: Int) -> Bool {
        let now = ContinuousClock.now
        let room = self.state.withLock { state in
            let excess = state.bytes + capacity + Self.overhead - self.budget
            return excess <= 0 || Self.freeable(in: state, now: now, protection: self.protection) >= excess
        }
        if !room { self.observer.refused() }
        return room
    }

    /// Joins the whole read of the blob `digest` begun in the last `sharedFor`, or begins one that
    /// the caller leads (and `finish`es with what it read, or nil).
    package func join(_ digest: Digest) -> SharedFlights<Digest, Read>.Role {
        self.fills.join(digest, youngerThan: self.sharedFor)
    }

    /// The bytes of one read or one push, collected as they pass, and stored only when they turn
    /// out to be a whole blob (`finish`). The buffer's capacity is reserved against the bound on
    /// bytes being collected before it is allocated; a blob larger than the cache's largest
    /// entry, or growth past that bound, ends the collection (the bytes still pass). Dropping a
    /// capture releases what it reserved.
    package final class Capture: Sendable {
        struct Collected {
            /// The bytes so far; nil once given up or finished.
            var bytes: ByteBuffer?
            /// Reserved against the cache's bound: the buffer's capacity.
            var reserved: Int
        }

        private let cache: BlobCache
        private let collected: Mutex<Collected>

        /// `capacity` (a power of two, or 0) is reserved already.
        fileprivate init(cache: BlobCache, capacity: Int) {
            self.cache = cache
            let bytes = ByteBufferAllocator().buffer(capacity: capacity)
            assert(bytes.capacity == capacity)
            self.collected = Mutex(Collected(bytes: bytes, reserved: capacity))
        }

        deinit {
            self.cache.release(self.collected.withLock { $0.reserved })
        }

        /// Copies `chunk` in, unless that would pass a bound.
        package func append(_ chunk: ByteBuffer) {
            let count = chunk.readableBytes
            let released: Int = self.collected.withLock { collected in
                guard var bytes = collected.bytes else { return 0 }
                collected.bytes = nil  // one reference while it grows: no copy on write
                let needed = bytes.readableBytes + count
                if needed > bytes.capacity {
                    // The buffer grows to the next power of two: that is reserved first, within
                    // the largest entry (a power of two too).
                    let capacity = BlobCache.capacity(for: needed)
                    guard capacity <= self.cache.maximumEntry, self.cache.reserve(capacity - collected.reserved) else {
                        defer { collected.reserved = 0 }
                        return collected.reserved
                    }
                    collected.reserved = capacity
                    bytes.reserveCapacity(needed)
                    assert(bytes.capacity == capacity)
                }
                bytes.writeImmutableBuffer(chunk)
                collected.bytes = bytes
                return 0
            }
            self.cache.release(released)
        }

        /// Stores what was collected as `blob` if it is exactly `blob.size` bytes (the whole blob),
        /// and returns it then, held or not (no room); collects nothing more either way.
        @discardableResult
        package func finish(as blob: BlobRecord) -> ByteBuffer? {
            self.finishKeepingReservation(as: blob)?.bytes
        }

        /// As `finish`, and bytes that were not held keep their reservation against the bound on
        /// bytes being collected for as long as the returned `Reservation` lives: a pull's read
        /// answers them, to every request that waited for it, without holding more memory than
        /// that bound allows (past it, pulls stream).
        package func finishKeepingReservation(as blob: BlobRecord) -> Read? {
            let (bytes, reserved) = self.collected.withLock { collected -> (ByteBuffer?, Int) in
                defer { collected = Collected(bytes: nil, reserved: 0) }
                return (collected.bytes, collected.reserved)
            }
            guard let bytes, Int64(bytes.readableBytes) == blob.size else {
                self.cache.release(reserved)
                return nil
            }
            // Held: answered from the held copy (counted in the budget), not from a second one.
            if let held = self.cache.store(bytes, as: blob.digest) {
                self.cache.release(reserved)
                return Read(bytes: held, reservation: nil)
            }
            return Read(bytes: bytes, reservation: Reservation(cache: self.cache, count: reserved))
        }
    }

    /// Bytes counted against the bound on bytes being collected until this is released.
    package final class Reservation: Sendable {
        private let cache: BlobCache
        private let count: Int

        fileprivate init(cache: BlobCache, count: Int) {
            self.cache = cache
            self.count = count
        }

        deinit {
            self.cache.release(self.count)
        }
    }

    /// A pull's read of a whole blob, as the requests that waited for it share it: its bytes,
    /// and the reservation that counts them while they are answered when the cache did not keep
    /// them.
    package struct Read: Sendable {
        package let bytes: ByteBuffer
        package let reservation: Reservation?
    }
}
