import Contracts
import Crypto
import Foundation
import Logging
import InMemory
import NIOCore
import Registry
import Synchronization
import Testing

/// The Registry layer over in-memory services: which calls each operation makes, and what it
/// decides, without a database or a server.
@Suite struct RegistryLayerTests {
    let repository = RepositoryName("team/app")!

    static func digest(_ text: String) -> Contracts.Digest {
        Contracts.Digest("sha256:" + SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined())!
    }

    static func body(_ text: String) -> AsyncStream<ByteBuffer> {
        AsyncStream { continuation in
            continuation.yield(ByteBuffer(string: text))
            continuation.finish()
        }
    }

    func pushed(_ text: String, _ registry: RegistryService) async throws -> BlobRecord {
        let session = try await registry.startUpload(for: self.repository, algorithm: .sha256, client: "test")
        return try await registry.completeUpload(
            session.id, in: self.repository, digest: Self.digest(text), appending: Self.body(text), at: nil
        )
    }

    /// A push is one blob call (append + commit) and one metadata call (link); a duplicate's copy is dropped.
    @Test func aPushCommitsLinksAndDropsADuplicateCopy() async throws {
        let metadata = InMemoryMetadata()
        let blobs = InMemoryBlobs()
        let registry = RegistryService(metadata: metadata, blobs: blobs)
        let first = try await self.pushed("layer", registry)
        #expect(blobs.count("appendUpload") == 1 && blobs.count("commitUpload") == 1 && blobs.count("uploadStatus") == 0)
        #expect(metadata.count("linkBlob") == 1)
        #expect(try await metadata.blob(first.digest, in: self.repository) == first)
        let second = try await self.pushed("layer", registry)
        #expect(second == first, "the first location stays the digest's")
        #expect(await Self.eventually { blobs.storedLocations == [first.location] }, "the second upload's copy is discarded")
    }

    /// The duplicate's copy is dropped after the push is answered (in split mode one more internal
    /// call and a delete), at most `backgroundDiscards` at once; past that the push waits for it.
    @Test(.timeLimit(.minutes(1))) func aDuplicateCopyIsDroppedAfterTheAnswerWithinABound() async throws {
        let blobs = InMemoryBlobs()
        let registry = RegistryService(metadata: InMemoryMetadata(), blobs: blobs, backgroundDiscards: 2)
        let first = try await self.pushed("layer", registry)
        blobs.holdDiscards(true)
        // Two pushes answer while their copies wait to be dropped.
        for _ in 0..<2 {
            #expect(try await self.pushed("layer", registry) == first)
        }
        #expect(blobs.storedLocations.count == 3 && registry.discards.inFlight == 2)
        // The third waits for its own drop: it answers only once drops go through again.
        let answered = Flag()
        let third = Task {
            defer { answered.set() }
            return try await self.pushed("layer", registry)
        }
        #expect(await Self.eventually { blobs.count("discard") == 3 })
        try await Task.sleep(for: .milliseconds(50))
        #expect(blobs.storedLocations.count == 4, "the third push's copy is stored, its drop waiting")
        #expect(!answered.isSet, "past the bound the push waits for its own drop")
        #expect(registry.discards.inFlight == 2)
        blobs.holdDiscards(false)
        #expect(try await third.value == first)
        #expect(await Self.eventually { blobs.storedLocations == [first.location] && registry.discards.inFlight == 0 })
    }

    final class Flag: Sendable {
        private let state = Mutex(false)
        func set() { self.state.withLock { $0 = true } }
        var isSet: Bool { self.state.withLock { $0 } }
    }

    /// Whether `condition` holds within five seconds.
    static func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<500 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    /// A pull asks the storage for a redirect once; after "no URL" it reads only.
    @Test func aPullAsksForARedirectOnceThenOnlyReads() async throws {
        let blobs = InMemoryBlobs()
        let registry = RegistryService(metadata: InMemoryMetadata(), blobs: blobs)
        let blob = try await self.pushed("pulled bytes", registry)
        for _ in 0..<3 {
            let answer = try #require(try await registry.pull(blob.digest, in: self.repository))
            var read = ByteBuffer()
            try await registry.open(answer.blob, range: nil).forEach { read.writeImmutableBuffer($0) }
            #expect(String(buffer: read) == "pulled bytes")
        }
        #expect(blobs.count("externalURL") == 1 && blobs.count("read") == 3)
        #expect(try await registry.pull(blob.digest, in: RepositoryName("other/app")!) == nil)
    }

    /// A storage that redirects is asked on every GET (each URL is presigned for its blob), never on HEAD.
    @Test func aRedirectingStorageIsAskedEveryGet() async throws {
        let blobs = InMemoryBlobs()
        blobs.redirect(to: "https://bucket.example/")
        let registry = RegistryService(metadata: InMemoryMetadata(), blobs: blobs)
        let blob = try await self.pushed("redirected", registry)
        #expect(try await registry.pull(blob.digest, in: self.repository) == .redirect(blob, url: "https://bucket.example/" + blob.location))
        #expect(try await registry.pull(blob.digest, in: self.repository) == .redirect(blob, url: "https://bucket.example/" + blob.location))
        _ = try await registry.pull(blob.digest, in: self.repository, redirect: false)
        #expect(blobs.count("externalURL") == 2)
    }

    /// A read that fails before its first byte fails `open`, so the handler can still answer 503.
    @Test func aReadFailingBeforeItsFirstByteFailsOpen() async throws {
        let blobs = InMemoryBlobs()
        let registry = RegistryService(metadata: InMemoryMetadata(), blobs: blobs)
        let blob = try await self.pushed("unreachable", registry)
        blobs.failReads(with: RegistryError(.unavailable, "the blob service is not reachable"))
        await #expect(throws: RegistryError(.unavailable, "the blob service is not reachable")) {
            _ = try await registry.open(blob, range: nil)
        }
    }

    /// Ranges come back exactly, across chunk boundaries; an empty blob opens with no bytes.
    @Test func rangedAndEmptyReads() async throws {
        let registry = RegistryService(metadata: InMemoryMetadata(), blobs: InMemoryBlobs(chunkSize: 3))
        let blob = try await self.pushed("0123456789", registry)
        var read = ByteBuffer()
        try await registry.open(blob, range: 2...8).forEach { read.writeImmutableBuffer($0) }
        #expect(String(buffer: read) == "2345678")
        let empty = try await self.pushed("", registry)
        var chunks = 0
        try await registry.open(empty, range: nil).forEach { _ in chunks += 1 }
        #expect(chunks == 0)
    }

    /// A request cancelled while the read has not delivered its first byte ends with an error, not
    /// with an empty body, and the read ends too.
    @Test func cancellingTheWaitForTheFirstByteThrows() async throws {
        let blobs = InMemoryBlobs()
        let registry = RegistryService(metadata: InMemoryMetadata(), blobs: blobs)
        let blob = try await self.pushed("slow", registry)
        blobs.stallReads(true)
        let waiting = Task { try await registry.open(blob, range: nil) }
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiting.value }
    }

    /// A consumer that stops (a client gone) ends the read instead of leaving it waiting.
    @Test func aConsumerThatStopsEndsTheRead() async throws {
        let blobs = InMemoryBlobs(chunkSize: 1)
        let registry = RegistryService(metadata: InMemoryMetadata(), blobs: blobs)
        let blob = try await self.pushed(String(repeating: "x", count: 1000), registry)
        struct Gone: Error {}
        var received = 0
        await #expect(throws: Gone.self) {
            try await registry.open(blob, range: nil).forEach { _ in
                received += 1
                if received == 3 { throw Gone() }
            }
        }
        #expect(received == 3)
        // The same registry still serves whole reads afterwards.
        var read = 0
        try await registry.open(blob, range: nil).forEach { read += $0.readableBytes }
        #expect(read == 1000)
    }

    /// A manifest push without a source queues the image for the scan; deletions go to metadata.
    @Test func manifestsTagsAndListingsGoToMetadata() async throws {
        let metadata = InMemoryMetadata()
        let registry = RegistryService(metadata: metadata, blobs: InMemoryBlobs())
        let config = try await self.pushed("{}", registry)
        let layer = try await self.pushed("layer", registry)
        let json = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config.digest)","size":2},
             "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(layer.digest)","size":5}]}
            """
        let document = try ManifestDocument.parse(Array(json.utf8), contentType: nil)
        let digest = Self.digest(json)
        try await registry.putManifest(
            ManifestPut(repository: self.repository, digest: digest, bytes: ByteBuffer(string: json), document: document, tags: [Tag("1.0")!], pushedBy: nil),
            client: "test"
        )
        #expect(try await registry.manifest(.tag(Tag("1.0")!), in: self.repository)?.digest == digest)
        #expect(try await registry.tags(in: self.repository, page: PageRequest())?.items == ["1.0"])
        #expect(try await registry.repositories(page: PageRequest()).items == [self.repository.value])
        try await registry.deleteTag(Tag("1.0")!, in: self.repository)
        #expect(try await registry.manifest(.tag(Tag("1.0")!), in: self.repository) == nil)
        #expect(metadata.count("putManifest") == 1 && metadata.count("deleteTag") == 1)
    }
}

/// Pulls are noted in memory and handed to the metadata service in one batch per flush.
@Suite struct PullRecordingTests {
    @Test func pullsAreRecordedInBatches() async throws {
        let metadata = InMemoryMetadata()
        let pulls = PullRecorder(metadata: metadata, logger: Logger(label: "test"))
        let registry = RegistryService(metadata: metadata, blobs: InMemoryBlobs(), pulls: pulls)
        let repository = RepositoryName("team/app")!
        let bytes = ByteBuffer(string: #"{"schemaVersion":2}"#)
        let digest = Digest(algorithm: .sha256, hex: SHA256.hash(data: Array(bytes.readableBytesView)).map { String(format: "%02x", $0) }.joined())!
        try await metadata.putManifest(ManifestPut(
            repository: repository, digest: digest, bytes: bytes,
            document: ManifestDocument(
                mediaType: MediaType.ociManifest, blobs: [], manifests: [], subject: nil, artifactType: nil, annotations: nil
            ),
            tags: [Tag("1.0")!], pushedBy: nil
        ))
        for _ in 0..<50 { _ = try await registry.manifest(.tag(Tag("1.0")!), in: repository) }
        _ = try await registry.manifest(.tag(Tag("unknown")!), in: repository)
        #expect(metadata.count("recordPulls") == 0)
        await pulls.flush()
        #expect(metadata.count("recordPulls") == 1)
        #expect(metadata.recordedPulls.map(\.digest) == [digest])
        // Nothing new: no call.
        await pulls.flush()
        #expect(metadata.count("recordPulls") == 1)
    }

    /// A batch that fills up is handed over at once, without waiting for the interval, and the
    /// pull that found it full is the first of the next batch: no pull is lost.
    @Test func aFullBatchIsHandedOverAtOnce() async throws {
        let metadata = InMemoryMetadata()
        let pulls = PullRecorder(metadata: metadata, interval: .seconds(3600), logger: Logger(label: "test"))
        let repository = RepositoryName("team/app")!
        let digests = (0...PullRecorder.capacity).map { Digest(algorithm: .sha256, hex: String(format: "%064x", $0))! }
        for digest in digests { pulls.note(digest, in: repository) }
        for _ in 0..<100 where metadata.count("recordPulls") == 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(metadata.count("recordPulls") == 1)
        #expect(metadata.recordedPulls.count == PullRecorder.capacity)
        await pulls.flush()
        #expect(Set(metadata.recordedPulls.map(\.digest)) == Set(digests))
    }
}

/// The orphan scan's second look: a blob that no row held when the storage was listed but that
/// its commit recorded while the scan waited keeps its bytes; the others go.
@Suite struct OrphanScanTests {
    @Test func aCommitRecordedDuringTheSecondLookKeepsItsBytes() async throws {
        let metadata = InMemoryMetadata()
        let blobs = InMemoryBlobs()
        let repository = RepositoryName("team/app")!
        var committed: [BlobRecord] = []
        for content in ["orphan", "about to be recorded"] {
            let bytes = ByteBuffer(string: content)
            let digest = Digest(algorithm: .sha256, hex: SHA256.hash(data: Array(bytes.readableBytesView)).map { String(format: "%02x", $0) }.joined())!
            let session = try await blobs.startUpload(for: repository, algorithm: .sha256)
            committed.append(try await blobs.commitUpload(
                session.id, for: repository, digest: digest, appending: RegistryLayerTests.body(content), at: 0
            ))
        }
        let collector = GarbageCollector(
            metadata: metadata, blobs: blobs, gracePeriod: .zero, orphanRecheckDelay: .milliseconds(500), logger: Logger(label: "test")
        )
        async let scan = collector.scanOrphans(dryRun: false)
        try await Task.sleep(for: .milliseconds(150))
        // The commit's request records its blob while the scan waits.
        try await metadata.linkBlob(committed[1], into: repository)
        let result = try await scan
        #expect(result.listed == 2 && result.deleted == 1 && result.orphans.map(\.location) == [committed[0].location], "\(result)")
        #expect(blobs.storedLocations == [committed[1].location])
    }

    /// Most of the storage without rows is the wrong database, not a crash's leftovers: the scan
    /// deletes nothing and says so.
    @Test func aStorageMostlyWithoutRowsIsNotDeleted() async throws {
        let metadata = InMemoryMetadata()
        let blobs = InMemoryBlobs()
        let repository = RepositoryName("team/app")!
        for number in 0..<(GarbageCollector.orphanRefusalMinimum + 10) {
            let content = "blob \(number)"
            let digest = Digest(algorithm: .sha256, hex: SHA256.hash(data: Array(content.utf8)).map { String(format: "%02x", $0) }.joined())!
            let session = try await blobs.startUpload(for: repository, algorithm: .sha256)
            _ = try await blobs.commitUpload(session.id, for: repository, digest: digest, appending: RegistryLayerTests.body(content), at: 0)
        }
        let collector = GarbageCollector(
            metadata: metadata, blobs: blobs, gracePeriod: .zero, orphanRecheckDelay: .milliseconds(10), logger: Logger(label: "test")
        )
        let result = try await collector.scanOrphans(dryRun: false)
        #expect(result.refused && result.deleted == 0, "\(result)")
        #expect(blobs.storedLocations.count == GarbageCollector.orphanRefusalMinimum + 10)
    }
}
