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
/// Bounded twice: at most `budget` bytes held, and at most `budget` bytes more being collected by
/// reads and pushes in flight (`Capture`); one entry takes at most `maximumEntry` bytes.
package final class BlobCache: Sendable {
    package typealias Observer = CacheObserver

    /// The largest entry, whatever the budget.
    package static let largestEntry = 4 << 20
    /// Fixed cost of an entry beyond its bytes: the node, the key, the dictionary's slot.
    static let overhead = 160

    final class Node: RecencyLinked {
        let digest: Digest
        let bytes: ByteBuffer
        var cost: Int { self.bytes.readableBytes + BlobCache.overhead }
        /// Toward the newest (strong: the list holds its nodes from the oldest on) and the oldest.
        var newer: Node?
        unowned var older: Node?

        init(digest: Digest, bytes: ByteBuffer) {
            self.digest = digest
            self.bytes = bytes
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
    /// Blobs larger than this are never held: the smaller of `largestEntry` and an eighth of the budget.
    package let maximumEntry: Int
    let observer: Observer
    private let state = Mutex(State())

    /// A cache of at most `budget` bytes (0: holds nothing).
    package init(budget: Int, observer: Observer = Observer()) {
        self.budget = max(0, budget)
        self.maximumEntry = min(Self.largestEntry, self.budget / 8)
        self.observer = observer
    }

    /// What the cache holds now.
    package var size: (bytes: Int, entries: Int, collecting: Int) {
        self.state.withLock { ($0.bytes, $0.nodes.count, $0.collecting) }
    }

    /// Whether a blob of `size` bytes may be held at all.
    package func admits(_ size: Int64) -> Bool {
        size >= 0 && size <= Int64(self.maximumEntry)
    }

    /// The bytes of `blob` (its `range`, inclusive), when held; counted as a hit or a miss for
    /// blobs small enough to be held.
    package func bytes(of blob: BlobRecord, range: ClosedRange<Int64>?) -> ByteBuffer? {
        guard self.admits(blob.size) else { return nil }
        let held: ByteBuffer? = self.state.withLock { state in
            guard let node = state.nodes[blob.digest] else { return nil }
            state.recency.touch(node)
            return node.bytes
        }
        guard let held, held.readableBytes == blob.size else {
            self.observer.miss()
            return nil
        }
        self.observer.hit()
        guard let range else { return held }
        guard range.lowerBound >= 0, range.upperBound < blob.size, range.lowerBound <= range.upperBound else { return nil }
        return held.getSlice(at: held.readerIndex + Int(range.lowerBound), length: Int(range.upperBound - range.lowerBound) + 1)
    }

    /// Starts collecting the bytes of a blob as they pass; nil when the cache holds nothing or
    /// `expected` (the blob's size, when known) is more than one entry may take.
    package func capture(expecting expected: Int64? = nil) -> Capture? {
        guard self.maximumEntry > 0 else { return nil }
        if let expected, !self.admits(expected) { return nil }
        return Capture(cache: self, capacity: expected.map { Int($0) })
    }

    /// Reserves `count` more bytes for a capture; false past the bound on bytes in flight.
    fileprivate func reserve(_ count: Int) -> Bool {
        self.state.withLock { state in
            guard state.collecting + count <= self.budget else { return false }
            state.collecting += count
            return true
        }
    }

    fileprivate func release(_ count: Int) {
        guard count > 0 else { return }
        self.state.withLock { $0.collecting -= count }
    }

    /// Holds `bytes` as the blob `digest`, evicting the least recently used past the budget.
    fileprivate func store(_ bytes: ByteBuffer, as digest: Digest) {
        guard bytes.readableBytes <= self.maximumEntry else { return }
        let (evicted, held, entries) = self.state.withLock { state -> (Int, Int, Int) in
            if let old = state.nodes[digest] { state.remove(old) }
            let node = Node(digest: digest, bytes: bytes)
            state.nodes[digest] = node
            state.recency.pushNewest(node)
            state.bytes += node.cost
            var evicted = 0
            while state.bytes > self.budget, let oldest = state.recency.oldest {
                state.remove(oldest)
                evicted += 1
            }
            return (evicted, state.bytes, state.nodes.count)
        }
        if evicted > 0 { self.observer.evicted(evicted) }
        self.observer.size(held, entries)
    }

    /// The bytes of one read or one push, collected as they pass, and stored only when they turn
    /// out to be a whole blob (`finish`). A blob larger than the cache's largest entry, or bytes
    /// past the bound on collecting, end the collection (the bytes still pass); dropping a capture
    /// releases what it reserved.
    package final class Capture: Sendable {
        private let cache: BlobCache
        /// The bytes so far; nil once given up.
        private let collected: Mutex<ByteBuffer?>

        fileprivate init(cache: BlobCache, capacity: Int?) {
            self.cache = cache
            self.collected = Mutex(ByteBufferAllocator().buffer(capacity: capacity ?? 0))
        }

        deinit {
            let reserved = self.collected.withLock { $0?.readableBytes ?? 0 }
            self.cache.release(reserved)
        }

        /// Copies `chunk` in, unless that would pass a bound.
        package func append(_ chunk: ByteBuffer) {
            let count = chunk.readableBytes
            let released: Int? = self.collected.withLock { collected in
                guard var bytes = collected else { return nil }
                guard bytes.readableBytes + count <= self.cache.maximumEntry, self.cache.reserve(count) else {
                    collected = nil
                    return bytes.readableBytes
                }
                collected = nil  // one reference while it grows: no copy on write
                bytes.writeImmutableBuffer(chunk)
                collected = bytes
                return nil
            }
            if let released { self.cache.release(released) }
        }

        /// Stores what was collected as `blob`, if it is exactly `blob.size` bytes (the whole blob);
        /// collects nothing more either way.
        package func finish(as blob: BlobRecord) {
            guard let bytes = self.collected.withLock({ collected -> ByteBuffer? in
                defer { collected = nil }
                return collected
            }) else { return }
            self.cache.release(bytes.readableBytes)
            guard Int64(bytes.readableBytes) == blob.size else { return }
            // A buffer that grew by doubling may hold up to twice its bytes: held, it is copied to size.
            if bytes.capacity - bytes.readableBytes > bytes.readableBytes / 8 {
                var exact = ByteBufferAllocator().buffer(capacity: bytes.readableBytes)
                exact.writeImmutableBuffer(bytes)
                self.cache.store(exact, as: blob.digest)
            } else {
                self.cache.store(bytes, as: blob.digest)
            }
        }
    }
}
