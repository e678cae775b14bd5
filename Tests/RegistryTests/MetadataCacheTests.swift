import Contracts
import Crypto
import Foundation
import InMemory
import Logging
import Metadata
import NIOCore
import Registry
import Synchronization
import Testing

/// The gateway's manifest cache: its bound, its budget, its invalidation, and the change log it
/// follows.
@Suite struct MetadataCacheTests {
    let repository = RepositoryName("team/app")!
    let other = RepositoryName("team/other")!

    static func record(_ text: String) -> ManifestRecord {
        let bytes = ByteBuffer(string: text)
        let hex = SHA256.hash(data: Array(bytes.readableBytesView)).map { String(format: "%02x", $0) }.joined()
        return ManifestRecord(digest: Digest(algorithm: .sha256, hex: hex)!, mediaType: MediaType.ociManifest, bytes: bytes)
    }

    static func fresh(_ budget: Int = 1 << 20, bound: Duration = .seconds(60)) -> MetadataCache {
        let cache = MetadataCache(budget: budget, bound: bound)
        cache.confirm(freshAsOf: .now)
        return cache
    }

    @Test func nothingIsAnsweredBeforeTheLogConfirmedItNorAfterTheBound() async throws {
        let cache = MetadataCache(budget: 1 << 20, bound: .milliseconds(200))
        let record = Self.record("a")
        cache.store(record, as: .tag(Tag("1.0")!), in: self.repository, ticket: cache.ticket(self.repository))
        #expect(cache.size.entries == 1)
        #expect(cache.manifest(.tag(Tag("1.0")!), in: self.repository) == nil, "never confirmed: not trusted")
        cache.confirm(freshAsOf: .now)
        #expect(cache.manifest(.tag(Tag("1.0")!), in: self.repository) == record)
        try await Task.sleep(for: .milliseconds(300))
        #expect(!cache.isTrusted)
        #expect(cache.manifest(.tag(Tag("1.0")!), in: self.repository) == nil, "the last confirmation is older than the bound")
        // An older confirmation never replaces a newer one.
        cache.confirm(freshAsOf: .now)
        cache.confirm(freshAsOf: .now - .seconds(10))
        #expect(cache.isTrusted)
    }

    @Test func theCacheStaysWithinItsBudgetAndEvictsTheLeastRecentlyUsed() {
        let evicted = Atomic<Int>(0)
        var observer = MetadataCache.Observer()
        observer.evicted = { evicted.add($0, ordering: .relaxed) }
        let budget = 64 * 1024
        let cache = MetadataCache(budget: budget, bound: .seconds(60), observer: observer)  // the bound is not what this tests (a loaded run took 12 s)
        cache.confirm(freshAsOf: .now)
        let kept = Self.record(String(repeating: "k", count: 1000))
        cache.store(kept, as: .tag(Tag("kept")!), in: self.repository, ticket: cache.ticket(self.repository))
        for index in 0..<1000 {
            let record = Self.record(String(repeating: "x", count: 1000) + String(index))
            cache.store(record, as: .tag(Tag("t\(index)")!), in: self.repository, ticket: cache.ticket(self.repository))
            #expect(cache.size.bytes <= budget)
            // Used all along: never the least recently used.
            #expect(cache.manifest(.tag(Tag("kept")!), in: self.repository) == kept)
        }
        #expect(cache.size.entries > 10 && cache.size.entries < 100, "\(cache.size)")
        #expect(evicted.load(ordering: .relaxed) == 1001 - cache.size.entries)
        #expect(cache.manifest(.tag(Tag("t0")!), in: self.repository) == nil, "the oldest went first")
        #expect(cache.manifest(.tag(Tag("t999")!), in: self.repository) != nil)
        // An entry larger than a sixteenth of the budget is not kept at all.
        let large = Self.record(String(repeating: "l", count: budget / 8))
        cache.store(large, as: .tag(Tag("large")!), in: self.repository, ticket: cache.ticket(self.repository))
        #expect(cache.manifest(.tag(Tag("large")!), in: self.repository) == nil)
    }

    @Test func whatWasReadBeforeAChangeIsNotStoredAfterIt() {
        let cache = Self.fresh()
        let record = Self.record("old")
        let ticket = cache.ticket(self.repository)
        let otherTicket = cache.ticket(self.other)
        cache.invalidate(self.repository)
        cache.store(record, as: .tag(Tag("1.0")!), in: self.repository, ticket: ticket)
        #expect(cache.manifest(.tag(Tag("1.0")!), in: self.repository) == nil, "read before the change, refused")
        cache.store(record, as: .tag(Tag("1.0")!), in: self.other, ticket: otherTicket)
        #expect(cache.manifest(.tag(Tag("1.0")!), in: self.other) == record, "another repository's ticket still holds")
        let beforeFlush = cache.ticket(self.other)
        cache.flush()
        #expect(cache.size.entries == 0 && cache.size.bytes == 0)
        cache.store(record, as: .tag(Tag("1.0")!), in: self.other, ticket: beforeFlush)
        #expect(cache.manifest(.tag(Tag("1.0")!), in: self.other) == nil, "read before a flush, refused")
    }

    @Test func theRefresherDropsWhatTheLogListsAndStartsAfreshWhenItCannotTell() {
        let cache = MetadataCache(budget: 1 << 20, bound: .seconds(60))
        let log = ChangeLog(source: .local, capacity: 8)
        let refresher = MetadataCacheRefresher(cache: cache, changes: { _ in throw CancellationError() }, logger: Logger(label: "test"))
        var cursors = ChangeCursors()
        var order: [String] = []
        func tick() { refresher.apply(log.changes(after: cursors), asked: .now, cursors: &cursors, order: &order) }
        func fill() {
            for repository in [self.repository, self.other] {
                cache.store(Self.record(repository.value), as: .tag(Tag("1.0")!), in: repository, ticket: cache.ticket(repository))
            }
        }
        tick()
        #expect(cache.isTrusted, "a local log is always current")
        fill()
        log.record(self.repository)
        tick()
        #expect(cache.manifest(.tag(Tag("1.0")!), in: self.repository) == nil)
        #expect(cache.manifest(.tag(Tag("1.0")!), in: self.other) != nil, "an unchanged repository keeps its entries")
        // A gap (a lost database channel) drops everything.
        fill()
        log.recordGap()
        tick()
        #expect(cache.size.entries == 0)
        // More changes than the ring holds: everything.
        fill()
        for _ in 0..<9 { log.record(self.repository) }
        tick()
        #expect(cache.size.entries == 0)
        // Another replica's log (another epoch): everything, then its changes only.
        fill()
        let replica = ChangeLog(source: .local)
        refresher.apply(replica.changes(after: cursors), asked: .now, cursors: &cursors, order: &order)
        #expect(cache.size.entries == 0)
        #expect(Set(cursors.positions.keys) == [log.epoch, replica.epoch], "both positions remembered")
        fill()
        log.record(self.other)
        tick()
        #expect(cache.manifest(.tag(Tag("1.0")!), in: self.repository) != nil, "back on the first log, from its position")
        #expect(cache.manifest(.tag(Tag("1.0")!), in: self.other) == nil)
    }

    @Test func aDatabaseLogIsAsFreshAsItsLastHeartbeat() {
        let log = ChangeLog(source: .database)
        #expect(log.changes(after: ChangeCursors()).staleness == nil, "no heartbeat yet")
        let sent = ContinuousClock.now
        log.confirm(sentAt: sent)
        #expect(log.changes(after: ChangeCursors(), now: sent + .milliseconds(250)).staleness == 250)
        log.lose()
        #expect(log.changes(after: ChangeCursors()).staleness == nil)

        // A stale log confirms the cache only as of when its last heartbeat was sent.
        let cache = MetadataCache(budget: 1 << 20, bound: .seconds(1))
        let refresher = MetadataCacheRefresher(cache: cache, changes: { _ in throw CancellationError() }, logger: Logger(label: "test"))
        var cursors = ChangeCursors()
        var order: [String] = []
        log.confirm(sentAt: .now - .seconds(5))
        refresher.apply(log.changes(after: cursors), asked: .now, cursors: &cursors, order: &order)
        #expect(!cache.isTrusted)
        log.confirm(sentAt: .now)
        refresher.apply(log.changes(after: cursors), asked: .now, cursors: &cursors, order: &order)
        #expect(cache.isTrusted)
    }

    /// The channel cut: a change log that stops answering leaves the cache answering nothing once
    /// its bound has passed, and every lookup goes to the metadata.
    @Test func aLostChannelFallsBackToAskingTheMetadata() async throws {
        let metadata = InMemoryMetadata()
        let cache = MetadataCache(budget: 1 << 20, bound: .milliseconds(300))
        let reachable = Atomic<Bool>(true)
        let log = ChangeLog(source: .local)
        let refresher = MetadataCacheRefresher(
            cache: cache,
            changes: { cursors in
                guard reachable.load(ordering: .relaxed) else { throw RegistryError(.unavailable, "cut") }
                return log.changes(after: cursors)
            },
            interval: .milliseconds(20), logger: Logger(label: "test")
        )
        let running = Task { await refresher.run() }
        defer { running.cancel() }
        let registry = RegistryService(metadata: metadata, blobs: InMemoryBlobs(), cache: cache)
        let record = Self.record(#"{"schemaVersion":2}"#)
        try await metadata.putManifest(ManifestPut(
            repository: self.repository, digest: record.digest, bytes: record.bytes,
            document: ManifestDocument(mediaType: MediaType.ociManifest, blobs: [], manifests: [], subject: nil, artifactType: nil, annotations: nil),
            tags: [Tag("1.0")!], pushedBy: nil
        ))
        while !cache.isTrusted { try await Task.sleep(for: .milliseconds(10)) }
        for _ in 0..<10 { #expect(try await registry.manifest(.tag(Tag("1.0")!), in: self.repository) == record) }
        #expect(metadata.count("manifest") == 1, "one lookup, nine answers from memory")

        reachable.store(false, ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(400))
        for _ in 0..<5 { _ = try await registry.manifest(.tag(Tag("1.0")!), in: self.repository) }
        #expect(metadata.count("manifest") == 6, "every lookup asks while the log is unreachable")

        reachable.store(true, ordering: .relaxed)
        while !cache.isTrusted { try await Task.sleep(for: .milliseconds(10)) }
        _ = try await registry.manifest(.tag(Tag("1.0")!), in: self.repository)
        #expect(metadata.count("manifest") == 6, "answered from memory again")
    }

    /// A delete or a tag move through this registry is seen by its next lookup, not a bound later;
    /// `latest` and lookups that find nothing are never kept.
    @Test func aWriteThroughTheRegistryIsSeenAtOnce() async throws {
        let metadata = InMemoryMetadata()
        let cache = Self.fresh()
        let registry = RegistryService(metadata: metadata, blobs: InMemoryBlobs(), cache: cache)
        let document = ManifestDocument(mediaType: MediaType.ociManifest, blobs: [], manifests: [], subject: nil, artifactType: nil, annotations: nil)
        let first = Self.record(#"{"schemaVersion":2,"first":1}"#)
        let second = Self.record(#"{"schemaVersion":2,"second":2}"#)
        for (record, tags) in [(first, ["1.0-SNAPSHOT", "latest"]), (second, [])] {
            try await registry.putManifest(ManifestPut(
                repository: self.repository, digest: record.digest, bytes: record.bytes, document: document,
                tags: tags.map { Tag($0)! }, pushedBy: nil
            ), client: "test")
        }
        let snapshot = Reference.tag(Tag("1.0-SNAPSHOT")!)
        #expect(try await registry.manifest(snapshot, in: self.repository) == first)
        #expect(try await registry.manifest(snapshot, in: self.repository) == first)
        #expect(try await registry.manifest(.digest(first.digest), in: self.repository) == first)
        #expect(metadata.count("manifest") == 1, "by tag once; the digest came with it")
        _ = try await registry.manifest(.tag(Tag("latest")!), in: self.repository)
        _ = try await registry.manifest(.tag(Tag("latest")!), in: self.repository)
        #expect(metadata.count("manifest") == 3, "latest is always asked")
        #expect(try await registry.manifest(.tag(Tag("absent")!), in: self.repository) == nil)
        #expect(try await registry.manifest(.tag(Tag("absent")!), in: self.repository) == nil)
        #expect(metadata.count("manifest") == 5, "nothing found is never kept")

        // The tag moves through the registry: the next lookup sees it.
        try await registry.putManifest(ManifestPut(
            repository: self.repository, digest: second.digest, bytes: second.bytes, document: document,
            tags: [Tag("1.0-SNAPSHOT")!], pushedBy: nil
        ), client: "test")
        #expect(try await registry.manifest(snapshot, in: self.repository) == second)
        // Deleted through the registry: gone at once.
        try await registry.deleteManifest(second.digest, in: self.repository)
        #expect(try await registry.manifest(.digest(second.digest), in: self.repository) == nil)
        try await registry.deleteTag(Tag("latest")!, in: self.repository)
        try await registry.deleteManifest(first.digest, in: self.repository)
        #expect(try await registry.manifest(.digest(first.digest), in: self.repository) == nil)
    }

    func put(_ record: ManifestRecord, tags: [String], through registry: RegistryService) async throws {
        try await registry.putManifest(self.manifestPut(record, tags: tags), client: "test")
    }

    func manifestPut(_ record: ManifestRecord, tags: [String]) -> ManifestPut {
        let document = ManifestDocument(mediaType: MediaType.ociManifest, blobs: [], manifests: [], subject: nil, artifactType: nil, annotations: nil)
        return ManifestPut(
            repository: self.repository, digest: record.digest, bytes: record.bytes, document: document,
            tags: tags.map { Tag($0)! }, pushedBy: nil
        )
    }

    /// Every node of a rollout resolves the same tag at once: lookups of one reference at the same
    /// time make one metadata call, and each gets the manifest.
    @Test func concurrentLookupsOfOneTagShareOneCall() async throws {
        let metadata = InMemoryMetadata()
        let shared = BlobCacheTests.SharedCount()
        let cache = MetadataCache(budget: 1 << 20, bound: .seconds(60), observer: shared.observer)
        cache.confirm(freshAsOf: .now)
        let registry = RegistryService(metadata: metadata, blobs: InMemoryBlobs(), cache: cache)
        let first = Self.record(#"{"schemaVersion":2,"rollout":1}"#)
        try await self.put(first, tags: ["1.0"], through: registry)
        let tag = Reference.tag(Tag("1.0")!)
        metadata.holdLookups(true)
        let lookups = (0..<8).map { _ in Task { try await registry.manifest(tag, in: self.repository) } }
        #expect(await BlobCacheTests.eventually { metadata.count("manifest") >= 1 })
        try await Task.sleep(for: .milliseconds(100))
        #expect(metadata.count("manifest") == 1, "the others wait for the call in flight")
        metadata.holdLookups(false)
        for lookup in lookups { #expect(try await lookup.value == first) }
        #expect(metadata.count("manifest") == 1)
        #expect(shared.value == 7)
    }

    /// A rollout's nodes pull the same layers, whose links a manifest push dropped from the cache:
    /// their lookups share one metadata call too.
    @Test func concurrentBlobLookupsShareOneCall() async throws {
        let metadata = InMemoryMetadata()
        let registry = RegistryService(metadata: metadata, blobs: InMemoryBlobs(), cache: Self.fresh())
        let blob = BlobRecord(digest: Self.record("layer").digest, size: 5, location: "blobs/layer")
        try await metadata.linkBlob(blob, into: self.repository)
        metadata.holdLookups(true)
        let pulls = (0..<8).map { _ in Task { try await registry.pull(blob.digest, in: self.repository)?.blob } }
        #expect(await BlobCacheTests.eventually { metadata.count("blob") >= 1 })
        try await Task.sleep(for: .milliseconds(100))
        metadata.holdLookups(false)
        for pull in pulls { #expect(try await pull.value == blob) }
        #expect(metadata.count("blob") == 1)
    }

    /// Only answers that cannot be stale are shared: a lookup that starts after this process moved
    /// the tag never waits for one that read before the move, and when the shared call found
    /// nothing, each waiting lookup asks again (the tag may have been pushed through another
    /// gateway meanwhile, and nothing found is never kept either).
    @Test func onlyAnswersThatCannotBeStaleAreShared() async throws {
        let metadata = InMemoryMetadata()
        let registry = RegistryService(metadata: metadata, blobs: InMemoryBlobs(), cache: Self.fresh())
        let first = Self.record(#"{"schemaVersion":2,"move":1}"#)
        let second = Self.record(#"{"schemaVersion":2,"move":2}"#)
        try await self.put(first, tags: ["1.0"], through: registry)
        try await self.put(second, tags: [], through: registry)
        let tag = Reference.tag(Tag("1.0")!)
        metadata.holdLookups(true)
        let before = Task { try await registry.manifest(tag, in: self.repository) }
        #expect(await BlobCacheTests.eventually { metadata.count("manifest") == 1 })
        try await self.put(second, tags: ["1.0"], through: registry)
        let after = Task { try await registry.manifest(tag, in: self.repository) }
        #expect(await BlobCacheTests.eventually { metadata.count("manifest") == 2 }, "a call of its own")
        metadata.holdLookups(false)
        #expect(try await before.value == first, "read before the move")
        #expect(try await after.value == second)

        let next = Reference.tag(Tag("2.0")!)
        metadata.holdLookups(true)
        let missing = Task { try await registry.manifest(next, in: self.repository) }
        #expect(await BlobCacheTests.eventually { metadata.count("manifest") == 3 })
        // Pushed through another gateway: nothing here is invalidated.
        try await metadata.putManifest(self.manifestPut(second, tags: ["2.0"]))
        let later = Task { try await registry.manifest(next, in: self.repository) }
        try await Task.sleep(for: .milliseconds(50))
        metadata.holdLookups(false)
        #expect(try await missing.value == nil)
        #expect(try await later.value == second, "asked again, not given the shared call's nothing")
        #expect(metadata.count("manifest") == 4)
    }

    /// A blob pushed (or mounted) through the registry is pulled next without asking the metadata,
    /// and an unlink through the registry is seen at once.
    @Test func aPushedBlobIsPulledWithoutAskingTheMetadata() async throws {
        let metadata = InMemoryMetadata()
        let cache = Self.fresh()
        let registry = RegistryService(metadata: metadata, blobs: InMemoryBlobs(), cache: cache)
        let bytes = ByteBuffer(string: "layer bytes")
        let hex = SHA256.hash(data: Array(bytes.readableBytesView)).map { String(format: "%02x", $0) }.joined()
        let digest = Digest(algorithm: .sha256, hex: hex)!
        let session = try await registry.startUpload(for: self.repository, algorithm: .sha256, client: "test")
        let pushed = try await registry.completeUpload(
            session.id, in: self.repository, digest: digest, appending: RegistryLayerTests.body("layer bytes"), at: nil
        )
        #expect(try await registry.pull(digest, in: self.repository)?.blob == pushed)
        #expect(try await registry.pull(digest, in: self.repository)?.blob == pushed)
        #expect(metadata.count("blob") == 0, "the push's link is the lookup")
        // Pushing a manifest (or deleting a tag or a manifest) unlinks no blob: the link stays.
        let manifest = Self.record(#"{"schemaVersion":2,"layers":1}"#)
        try await self.put(manifest, tags: ["1.0"], through: registry)
        #expect(try await registry.manifest(.tag(Tag("1.0")!), in: self.repository) == manifest)
        try await registry.deleteTag(Tag("1.0")!, in: self.repository)
        #expect(try await registry.manifest(.tag(Tag("1.0")!), in: self.repository) == nil, "the tag's deletion is seen at once")
        #expect(try await registry.pull(digest, in: self.repository)?.blob == pushed)
        #expect(metadata.count("blob") == 0, "the link outlived the manifest push and the tag's deletion")

        #expect(try await registry.mount(digest, into: self.other, from: .anyRepository))
        #expect(try await registry.pull(digest, in: self.other)?.blob == pushed)
        #expect(metadata.count("blob") == 0, "the mount's link is the lookup")

        try await registry.unlinkBlob(digest, from: self.repository)
        #expect(try await registry.pull(digest, in: self.repository) == nil)
        #expect(metadata.count("blob") == 1)
    }
}
