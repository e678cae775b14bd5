import Contracts
import NIOCore
import Synchronization

/// What the gateway remembers of the metadata: manifests by tag and by digest, and blob lookups,
/// per repository, least recently used evicted first, within a byte budget (`MANIFEST_CACHE_MB`).
///
/// Nothing here is trusted on its own. The cache follows the metadata's change log
/// (`MetadataCacheRefresher`), and answers from memory only while it is fresh: every change
/// committed more than `bound` ago has been applied (`confirm(freshAsOf:)`). A refresher that
/// cannot reach the log stops confirming, and within `bound` every lookup asks the metadata again
/// (concurrent ones of one item share a call: `RegistryService.shared`) — a lost channel costs
/// speed, never correctness. Writes made through this process drop their repository's entries as
/// soon as they return (`invalidate`; `invalidateManifests` for writes that unlink no blob), so a
/// client sees its own delete or tag move at once; an answer read before a change and stored
/// after it is refused by the repository's generation (`Ticket`).
///
/// Not cached: answers that found nothing (a new tag must be visible at once, and nothing logs
/// "created"), and `latest`, which may resolve to the newest tag.
package final class MetadataCache: Sendable {
    package typealias Observer = CacheObserver

    /// A lookup's claim to store what it read: valid while its repository did not change.
    package struct Ticket: Sendable, Hashable {
        let bucket: Int
        let generation: UInt64
        let flushes: UInt64
    }

    enum Entry: Hashable {
        case manifest(String)
        case blob(Digest)
    }

    enum Value: Sendable {
        case manifest(ManifestRecord)
        case blob(BlobRecord)
    }

    final class Node: RecencyLinked {
        let repository: RepositoryName
        let entry: Entry
        let value: Value
        let cost: Int
        /// Toward the newest (strong: the list holds its nodes from the oldest on) and the oldest.
        var newer: Node?
        unowned var older: Node?

        init(repository: RepositoryName, entry: Entry, value: Value, cost: Int) {
            self.repository = repository
            self.entry = entry
            self.value = value
            self.cost = cost
        }
    }

    struct State: ~Copyable {
        var repositories: [RepositoryName: [Entry: Node]] = [:]
        var recency = RecencyList<Node>()
        var bytes = 0
        var entries = 0
        var generations: [UInt64]
        var flushes: UInt64 = 0
        var freshAsOf: ContinuousClock.Instant?

        mutating func remove(_ node: Node) {
            self.recency.unlink(node)
            self.bytes -= node.cost
            self.entries -= 1
        }
    }

    /// Buckets of repository generations (a repository's is its name's hash bucket's).
    static let buckets = 1024
    /// Fixed cost of an entry beyond its bytes: the node, the keys, the dictionaries' slots.
    static let overhead = 160

    package let budget: Int
    package let bound: Duration
    let observer: Observer
    private let state: Mutex<State>

    /// A cache of at most `budget` bytes, answering while its last confirmation is less than `bound` old.
    package init(budget: Int, bound: Duration = .milliseconds(900), observer: Observer = Observer()) {
        self.budget = max(0, budget)
        self.bound = bound
        self.observer = observer
        self.state = Mutex(State(generations: Array(repeating: 0, count: Self.buckets)))
    }

    static func bucket(_ repository: RepositoryName) -> Int {
        // A stable hash of the name (not `hashValue`, which is seeded per process; stability is
        // not needed, but FNV-1a is cheap and spreads names well).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in repository.value.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return Int(hash % UInt64(Self.buckets))
    }

    // MARK: Lookups

    /// The ticket to present when storing what is about to be read for `repository`.
    package func ticket(_ repository: RepositoryName) -> Ticket {
        let bucket = Self.bucket(repository)
        return self.state.withLock { Ticket(bucket: bucket, generation: $0.generations[bucket], flushes: $0.flushes) }
    }

    package func manifest(_ reference: Reference, in repository: RepositoryName) -> ManifestRecord? {
        guard case .manifest(let record)? = self.lookup(.manifest(reference.description), in: repository) else { return nil }
        return record
    }

    package func blob(_ digest: Digest, in repository: RepositoryName) -> BlobRecord? {
        guard case .blob(let record)? = self.lookup(.blob(digest), in: repository) else { return nil }
        return record
    }

    private func lookup(_ entry: Entry, in repository: RepositoryName) -> Value? {
        guard self.budget > 0 else { return nil }
        let now = ContinuousClock.now
        let value: Value? = self.state.withLock { state in
            guard let fresh = state.freshAsOf, now - fresh < self.bound,
                  let node = state.repositories[repository]?[entry]
            else { return nil }
            state.recency.touch(node)
            return node.value
        }
        if value == nil { self.observer.miss() } else { self.observer.hit() }
        return value
    }

    /// Stores what a lookup read, unless its repository changed since `ticket` was taken.
    package func store(_ record: ManifestRecord, as reference: Reference, in repository: RepositoryName, ticket: Ticket) {
        let cost = Self.overhead + reference.description.utf8.count + repository.value.utf8.count
            + record.bytes.readableBytes + record.mediaType.utf8.count
        self.store(.manifest(reference.description), .manifest(record), cost: cost, in: repository, ticket: ticket)
    }

    package func store(_ record: BlobRecord, in repository: RepositoryName, ticket: Ticket) {
        let cost = Self.overhead + repository.value.utf8.count + record.location.utf8.count + 72
        self.store(.blob(record.digest), .blob(record), cost: cost, in: repository, ticket: ticket)
    }

    private func store(_ entry: Entry, _ value: Value, cost: Int, in repository: RepositoryName, ticket: Ticket) {
        // One entry takes at most a sixteenth of the budget: a few large indexes do not empty it.
        guard self.budget > 0, cost <= self.budget / 16 else { return }
        let (evicted, bytes, entries) = self.state.withLock { state -> (Int, Int, Int) in
            guard state.flushes == ticket.flushes, state.generations[ticket.bucket] == ticket.generation else {
                return (0, state.bytes, state.entries)
            }
            if let old = state.repositories[repository]?[entry] { state.remove(old) }
            let node = Node(repository: repository, entry: entry, value: value, cost: cost)
            state.repositories[repository, default: [:]][entry] = node
            state.recency.pushNewest(node)
            state.bytes += cost
            state.entries += 1
            var evicted = 0
            while state.bytes > self.budget, let oldest = state.recency.oldest {
                state.remove(oldest)
                state.repositories[oldest.repository]?[oldest.entry] = nil
                if state.repositories[oldest.repository]?.isEmpty == true { state.repositories[oldest.repository] = nil }
                evicted += 1
            }
            return (evicted, state.bytes, state.entries)
        }
        if evicted > 0 { self.observer.evicted(evicted) }
        self.observer.size(bytes, entries)
    }

    // MARK: Changes

    /// Drops every entry of `repositories` and refuses what lookups started before read of them.
    package func invalidate(_ repositories: some Sequence<RepositoryName>) {
        let (bytes, entries) = self.state.withLock { state -> (Int, Int) in
            for repository in repositories {
                state.generations[Self.bucket(repository)] &+= 1
                guard let nodes = state.repositories.removeValue(forKey: repository) else { continue }
                for node in nodes.values { state.remove(node) }
            }
            return (state.bytes, state.entries)
        }
        self.observer.size(bytes, entries)
    }

    package func invalidate(_ repository: RepositoryName) {
        self.invalidate(CollectionOfOne(repository))
    }

    /// Drops the manifest entries of `repository` (its blob links stay: pushing or deleting a
    /// manifest or a tag unlinks no blob) and refuses what lookups started before read of it.
    /// After a push, the links its layers' uploads stored answer the pulls that follow.
    package func invalidateManifests(_ repository: RepositoryName) {
        let (bytes, entries) = self.state.withLock { state -> (Int, Int) in
            state.generations[Self.bucket(repository)] &+= 1
            guard let nodes = state.repositories[repository] else { return (state.bytes, state.entries) }
            var kept: [Entry: Node] = [:]
            for (entry, node) in nodes {
                if case .manifest = entry { state.remove(node) } else { kept[entry] = node }
            }
            state.repositories[repository] = kept.isEmpty ? nil : kept
            return (state.bytes, state.entries)
        }
        self.observer.size(bytes, entries)
    }

    /// Drops everything (the change log could not say what changed).
    package func flush() {
        self.state.withLock { state in
            state.flushes &+= 1
            state.recency.removeAll()
            state.repositories = [:]
            state.bytes = 0
            state.entries = 0
        }
        self.observer.size(0, 0)
    }

    /// Every change committed before `instant` has been applied.
    package func confirm(freshAsOf instant: ContinuousClock.Instant) {
        self.state.withLock { state in
            if state.freshAsOf.map({ $0 < instant }) ?? true { state.freshAsOf = instant }
        }
    }

    /// Bytes and entries held now.
    package var size: (bytes: Int, entries: Int) {
        self.state.withLock { ($0.bytes, $0.entries) }
    }

    /// Whether lookups are answered from memory now.
    package var isTrusted: Bool {
        let now = ContinuousClock.now
        return self.state.withLock { state in state.freshAsOf.map { now - $0 < self.bound } ?? false }
    }
}
