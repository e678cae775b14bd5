import Contracts
import Foundation
import NIOCore
import Testing

@testable import Metadata

/// The behaviour every `MetadataStore` must have. Each backend's suite runs every check here
/// against a fresh store (SQLite now; PostgreSQL runs the same list).
enum MetadataStoreConformance {
    static let repository = RepositoryName("team/app")!
    static let other = RepositoryName("other/app")!

    static func digest(_ seed: String) -> Digest {
        DigestHasherStandIn.sha256(seed)
    }

    static func blob(_ seed: String) -> BlobRecord {
        BlobRecord(digest: self.digest(seed), size: Int64(seed.utf8.count), location: "blobs/\(seed)")
    }

    /// A manifest put referencing `blobs`, with bytes unique to `seed`.
    static func manifest(_ seed: String, blobs: [BlobRecord], tags: [String], in repository: RepositoryName = repository)
        -> ManifestPut
    {
        let bytes = ByteBuffer(string: "{\"seed\":\"\(seed)\"}")
        return ManifestPut(
            repository: repository, digest: self.digest("manifest-" + seed), bytes: bytes,
            document: ManifestDocument(
                mediaType: MediaType.ociManifest, blobs: blobs.map(\.digest), manifests: [], subject: nil,
                artifactType: nil, annotations: nil
            ),
            tags: tags.map { Contracts.Tag($0)! }, pushedBy: "tester"
        )
    }

    /// Pier One's default: every tag immutable except `*-SNAPSHOT`.
    static let immutableUnlessSnapshot = TagRules()
    static let allMutable = TagRules(TagSettings(policy: TagPolicy(mutableTags: [Glob("*")])))
    static let allImmutable = TagRules(TagSettings(policy: TagPolicy(mutableTags: [])))

    static func blobsAreLinkedPerRepository(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        #expect(try await store.blob(layer.digest, in: self.repository) == nil)
        try await store.linkBlob(layer, into: self.repository)
        #expect(try await store.linkBlob(layer, into: self.repository) == layer)
        #expect(try await store.blob(layer.digest, in: self.repository) == layer)
        #expect(try await store.blob(layer.digest, in: self.other) == nil)
        // A second upload of the digest stored elsewhere: the first location stays, and is returned
        // so that the caller can discard the duplicate.
        let duplicate = BlobRecord(digest: layer.digest, size: layer.size, location: "blobs/another-upload")
        #expect(try await store.linkBlob(duplicate, into: self.other) == layer)
        #expect(try await store.blob(layer.digest, in: self.other) == layer)
    }

    static func manifestNeedsItsBlobsInTheRepository(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        try await store.linkBlob(layer, into: self.other)
        let put = self.manifest("a", blobs: [layer], tags: ["1.0"])
        do {
            try await store.putManifest(put, rules: immutableUnlessSnapshot)
            Issue.record("a manifest with a missing blob was stored")
        } catch let error as RegistryError {
            #expect(error.code == .manifestBlobUnknown)
        }
        #expect(try await store.manifest(put.digest, in: self.repository) == nil)
        #expect(try await store.manifestDigest(tagged: Contracts.Tag("1.0")!, in: self.repository) == nil)
    }

    static func storesManifestBytesAndTags(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        try await store.linkBlob(layer, into: self.repository)
        let put = self.manifest("a", blobs: [layer], tags: ["1.0", "stable"])
        try await store.putManifest(put, rules: immutableUnlessSnapshot)
        let stored = try await store.manifest(put.digest, in: self.repository)
        #expect(stored?.bytes == put.bytes)
        #expect(stored?.mediaType == MediaType.ociManifest)
        #expect(try await store.manifestDigest(tagged: Contracts.Tag("stable")!, in: self.repository) == put.digest)
        #expect(try await store.manifest(put.digest, in: self.other) == nil)
        let tagged = try await store.manifest(tagged: Contracts.Tag("1.0")!, in: self.repository)
        #expect(tagged?.digest == put.digest)
        #expect(tagged?.bytes == put.bytes)
        #expect(tagged?.mediaType == MediaType.ociManifest)
        #expect(try await store.manifest(tagged: Contracts.Tag("2.0")!, in: self.repository) == nil)
        #expect(try await store.manifest(tagged: Contracts.Tag("1.0")!, in: self.other) == nil)
    }

    static func immutableTagsDoNotMove(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        try await store.linkBlob(layer, into: self.repository)
        let first = self.manifest("a", blobs: [layer], tags: ["1.0"])
        let second = self.manifest("b", blobs: [layer], tags: ["1.0"])
        try await store.putManifest(first, rules: immutableUnlessSnapshot)
        // The identical re-push succeeds and changes nothing.
        try await store.putManifest(first, rules: immutableUnlessSnapshot)
        do {
            try await store.putManifest(second, rules: immutableUnlessSnapshot)
            Issue.record("moving an immutable tag succeeded")
        } catch let error as RegistryError {
            #expect(error.status == 409)
            #expect(error.message.contains("team/app:1.0 is immutable"))
        }
        #expect(try await store.manifestDigest(tagged: Contracts.Tag("1.0")!, in: self.repository) == first.digest)
        // Nothing of the refused push is left behind.
        #expect(try await store.manifest(second.digest, in: self.repository) == nil)
    }

    static func mutableTagsMove(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        try await store.linkBlob(layer, into: self.repository)
        try await store.putManifest(self.manifest("a", blobs: [layer], tags: ["1.0-SNAPSHOT"]), rules: immutableUnlessSnapshot)
        let second = self.manifest("b", blobs: [layer], tags: ["1.0-SNAPSHOT"])
        try await store.putManifest(second, rules: immutableUnlessSnapshot)
        #expect(try await store.manifestDigest(tagged: Contracts.Tag("1.0-SNAPSHOT")!, in: self.repository) == second.digest)
    }

    static func newestTagIsTheLastCreated(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        try await store.linkBlob(layer, into: self.repository)
        #expect(try await store.newestTagDigest(in: self.repository) == nil)
        try await store.putManifest(self.manifest("a", blobs: [layer], tags: ["2.0"]), rules: immutableUnlessSnapshot)
        try await Task.sleep(for: .milliseconds(5))
        let newer = self.manifest("b", blobs: [layer], tags: ["1.0"])
        try await store.putManifest(newer, rules: immutableUnlessSnapshot)
        #expect(try await store.newestTagDigest(in: self.repository) == newer.digest)
    }

    static func listingsArePagedInLexicalOrder(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        for name in ["b/x", "a/x", "c/x"] {
            try await store.linkBlob(layer, into: RepositoryName(name)!)
        }
        try await store.linkBlob(layer, into: self.repository)
        for tag in ["3", "1", "2"] {
            try await store.putManifest(self.manifest(tag, blobs: [layer], tags: [tag]), rules: immutableUnlessSnapshot)
        }
        #expect(try await store.tags(in: self.repository, page: .init()) == Page(items: ["1", "2", "3"], hasMore: false))
        #expect(try await store.tags(in: self.repository, page: .init(limit: 2)) == Page(items: ["1", "2"], hasMore: true))
        #expect(try await store.tags(in: self.repository, page: .init(limit: 2, after: "2")) == Page(items: ["3"], hasMore: false))
        #expect(try await store.tags(in: RepositoryName("no/such")!, page: .init()) == nil)
        let all = try await store.repositories(page: .init())
        #expect(all.items == ["a/x", "b/x", "c/x", "team/app"])
        #expect(try await store.repositories(page: .init(limit: 1, after: "a/x")) == Page(items: ["b/x"], hasMore: true))
    }

    static func concurrentPushesToOneTagHaveOneWinner(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        try await store.linkBlob(layer, into: self.repository)
        let puts = (0..<12).map { self.manifest("racer-\($0)", blobs: [layer], tags: ["race"]) }
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for put in puts {
                group.addTask {
                    do {
                        try await store.putManifest(put, rules: immutableUnlessSnapshot)
                        return true
                    } catch let error as RegistryError {
                        #expect(error.status == 409)
                        return false
                    } catch {
                        Issue.record("unexpected \(error)")
                        return false
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        let winner = try await store.manifestDigest(tagged: Contracts.Tag("race")!, in: self.repository)
        #expect(puts.contains { $0.digest == winner })
    }

    static func deletesRespectPolicyAndUse(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        try await store.linkBlob(layer, into: self.repository)
        let image = self.manifest("a", blobs: [layer], tags: ["1.0", "dev-SNAPSHOT"])
        try await store.putManifest(image, rules: immutableUnlessSnapshot)
        // The immutable tag cannot go, neither alone nor with its manifest.
        await #expect(throws: RegistryError.tagImmutableDelete(repository: self.repository, tag: "1.0")) {
            _ = try await store.deleteTag(Contracts.Tag("1.0")!, in: self.repository, rules: immutableUnlessSnapshot)
        }
        await #expect(throws: RegistryError.tagImmutableDelete(repository: self.repository, tag: "1.0")) {
            _ = try await store.deleteManifest(image.digest, in: self.repository, rules: immutableUnlessSnapshot)
        }
        // A blob a manifest uses cannot be unlinked.
        await #expect(throws: RegistryError.inUse("blob \(layer.digest)", by: image.digest, in: self.repository)) {
            _ = try await store.unlinkBlob(layer.digest, from: self.repository)
        }
        #expect(try await store.deleteTag(Contracts.Tag("dev-SNAPSHOT")!, in: self.repository, rules: immutableUnlessSnapshot))
        #expect(try await !store.deleteTag(Contracts.Tag("dev-SNAPSHOT")!, in: self.repository, rules: immutableUnlessSnapshot))
        #expect(try await store.deleteManifest(image.digest, in: self.repository, rules: allMutable))
        #expect(try await store.manifest(image.digest, in: self.repository) == nil)
        #expect(try await store.manifestDigest(tagged: Contracts.Tag("1.0")!, in: self.repository) == nil)
        #expect(try await store.unlinkBlob(layer.digest, from: self.repository))
        #expect(try await store.blob(layer.digest, in: self.repository) == nil)
        #expect(try await !store.unlinkBlob(layer.digest, from: self.repository))
        #expect(try await !store.deleteManifest(image.digest, in: self.other, rules: allMutable))
    }

    static func referrersAreFilteredAndPaged(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        try await store.linkBlob(layer, into: self.repository)
        let subject = self.digest("subject")
        var puts: [ManifestPut] = []
        for (index, type) in ["application/x.a", "application/x.b", "application/x.a"].enumerated() {
            var put = self.manifest("referrer-\(index)", blobs: [layer], tags: [])
            put.document.subject = subject
            put.document.artifactType = type
            put.document.annotations = ["n": String(index)]
            try await store.putManifest(put, rules: immutableUnlessSnapshot)
            puts.append(put)
        }
        let all = try await store.referrers(of: subject, in: self.repository, artifactType: nil, page: .init())
        #expect(all.items.map(\.digest) == puts.map(\.digest).sorted())
        #expect(all.items.allSatisfy { $0.annotations?["n"] != nil && $0.mediaType == MediaType.ociManifest })
        let onlyA = try await store.referrers(of: subject, in: self.repository, artifactType: "application/x.a", page: .init())
        #expect(onlyA.items.count == 2)
        let firstPage = try await store.referrers(of: subject, in: self.repository, artifactType: nil, page: .init(limit: 2))
        #expect(firstPage.hasMore && firstPage.items.count == 2)
        let nextPage = try await store.referrers(
            of: subject, in: self.repository, artifactType: nil,
            page: .init(limit: 2, after: firstPage.items.last?.digest.description)
        )
        #expect(nextPage.items.count == 1 && !nextPage.hasMore)
        #expect(try await store.referrers(of: subject, in: self.other, artifactType: nil, page: .init()).items.isEmpty)
    }

    static func mountsLinkFromPermittedSourcesOnly(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        #expect(try await store.mountBlob(layer.digest, into: self.repository, from: nil) == nil)
        try await store.linkBlob(layer, into: self.other)
        #expect(try await store.mountBlob(layer.digest, into: self.repository, from: [RepositoryName("third/app")!]) == nil)
        #expect(try await store.mountBlob(layer.digest, into: self.repository, from: []) == nil)
        #expect(try await store.blob(layer.digest, in: self.repository) == nil)
        #expect(try await store.mountBlob(layer.digest, into: self.repository, from: [self.other]) == layer)
        #expect(try await store.blob(layer.digest, in: self.repository) == layer)
        _ = try await store.unlinkBlob(layer.digest, from: self.other)
        _ = try await store.unlinkBlob(layer.digest, from: self.repository)
        #expect(try await store.mountBlob(layer.digest, into: RepositoryName("fourth/app")!, from: nil) == nil)
    }

    /// The review removes links no manifest references and then blobs no repository links, only
    /// for entries queued before the cutoff; referenced links stay.
    static func garbageIsReviewedAfterTheCutoff(_ store: some MetadataStore) async throws {
        let kept = self.blob("kept layer")
        let dropped = self.blob("dropped layer")
        try await store.linkBlob(kept, into: self.repository)
        try await store.linkBlob(dropped, into: self.repository)
        let image = self.manifest("image", blobs: [kept], tags: ["1.0"])
        try await store.putManifest(image, rules: immutableUnlessSnapshot)
        let past = Int64(Date().timeIntervalSince1970 * 1000) - 60_000
        // Queued just now: not due for a cutoff a minute ago.
        #expect(try await store.collectGarbage(queuedBefore: past, limit: 100).reviewed == 0)
        let future = Int64(Date().timeIntervalSince1970 * 1000) + 60_000
        let sweep = try await store.collectGarbage(queuedBefore: future, limit: 100)
        #expect(sweep.unlinked == 1 && sweep.removed == [dropped] && sweep.due == 0, "\(sweep)")
        try await store.purgeCollected(sweep.removed.map(\.location))
        #expect(try await store.blob(kept.digest, in: self.repository) == kept)
        #expect(try await store.blob(dropped.digest, in: self.repository) == nil)
        // Deleting the manifest queues its blobs: the next review takes them.
        _ = try await store.deleteTag(Contracts.Tag("1.0")!, in: self.repository, rules: allMutable)
        #expect(try await store.deleteManifest(image.digest, in: self.repository, rules: allMutable))
        let after = try await store.collectGarbage(queuedBefore: future + 1, limit: 100)
        #expect(after.removed.map(\.digest) == [kept.digest], "\(after)")
        // An upload of the same digest afterwards records its own location again.
        let again = BlobRecord(digest: kept.digest, size: kept.size, location: kept.location + "-again")
        #expect(try await store.linkBlob(again, into: self.repository) == again)
    }

    /// A removed blob whose deletion the collector never confirmed (it crashed, or the deletion
    /// failed) is handed out again after `GarbageSweep.retryAfter`, and not once it is confirmed.
    static func unconfirmedCollectionsAreHandedOutAgain(_ store: some MetadataStore) async throws {
        let blob = self.blob("collected, never confirmed")
        try await store.linkBlob(blob, into: self.repository)
        #expect(try await store.unlinkBlob(blob.digest, from: self.repository))
        let future = Int64(Date().timeIntervalSince1970 * 1000) + 600_000
        #expect(try await store.collectGarbage(queuedBefore: future, limit: 100).removed == [blob])
        #expect(try await store.collectGarbage(queuedBefore: future, limit: 100).removed.isEmpty)
        try await Task.sleep(for: .milliseconds(GarbageSweep.retryAfter + 300))
        #expect(try await store.collectGarbage(queuedBefore: future, limit: 100).removed == [blob])
        // Handed out once per back-off, not on every review.
        #expect(try await store.collectGarbage(queuedBefore: future, limit: 100).removed.isEmpty)
        try await store.purgeCollected([blob.location])
    }

    /// Reviews everything queued until nothing is due; what was removed, bytes confirmed.
    static func collectAll(_ store: some MetadataStore) async throws -> (manifests: Int, removed: Set<Digest>) {
        let future = Int64(Date().timeIntervalSince1970 * 1000) + 600_000
        var manifests = 0
        var removed = Set<Digest>()
        for _ in 0..<20 {
            let sweep = try await store.collectGarbage(queuedBefore: future, limit: 100)
            manifests += sweep.manifests
            removed.formUnion(sweep.removed.map(\.digest))
            try await store.purgeCollected(sweep.removed.map(\.location))
            if sweep.due == 0 { break }
        }
        return (manifests, removed)
    }

    /// Graph awareness: an index keeps its untagged children (and their blobs); a child shared by
    /// two indexes stays while one remains; deleting the last index collects its children and
    /// their blobs; deleting a subject collects its untagged referrers, not a tagged one; an
    /// untagged image pushed on its own is not collected (retention decides it).
    static func garbageFollowsIndexesAndReferrers(_ store: some MetadataStore) async throws {
        let shared = self.blob("shared child layer")
        let own = self.blob("own child layer")
        let loose = self.blob("loose layer")
        for blob in [shared, own, loose] { try await store.linkBlob(blob, into: self.repository) }
        let sharedChild = self.manifest("shared child", blobs: [shared], tags: [])
        let ownChild = self.manifest("own child", blobs: [own], tags: [])
        let untaggedAlone = self.manifest("untagged alone", blobs: [loose], tags: [])
        for put in [sharedChild, ownChild, untaggedAlone] { try await store.putManifest(put, rules: allMutable) }
        func index(_ seed: String, _ children: [ManifestPut], tags: [String]) -> ManifestPut {
            var put = self.manifest(seed, blobs: [], tags: tags)
            put.document.mediaType = MediaType.ociIndex
            put.document.manifests = children.map(\.digest)
            return put
        }
        let first = index("first index", [sharedChild, ownChild], tags: ["multi"])
        let second = index("second index", [sharedChild], tags: ["other"])
        try await store.putManifest(first, rules: allMutable)
        try await store.putManifest(second, rules: allMutable)
        var signature = self.manifest("signature", blobs: [loose], tags: [])
        signature.document.subject = first.digest
        var taggedSbom = self.manifest("tagged sbom", blobs: [loose], tags: ["sbom"])
        taggedSbom.document.subject = first.digest
        try await store.putManifest(signature, rules: allMutable)
        try await store.putManifest(taggedSbom, rules: allMutable)

        // Everything queued so far (the uploads' links) is referenced: nothing goes.
        var collected = try await self.collectAll(store)
        #expect(collected.manifests == 0 && collected.removed.isEmpty, "\(collected)")
        #expect(try await store.manifest(ownChild.digest, in: self.repository) != nil)

        #expect(try await store.deleteManifest(first.digest, in: self.repository, rules: allMutable))
        collected = try await self.collectAll(store)
        // The own child and the signature go; the shared child, the tagged SBOM and the image
        // pushed alone stay; of the blobs only the own child's layer is unreferenced.
        #expect(collected.manifests == 2, "\(collected)")
        #expect(collected.removed == [own.digest], "\(collected)")
        #expect(try await store.manifest(ownChild.digest, in: self.repository) == nil)
        #expect(try await store.manifest(signature.digest, in: self.repository) == nil)
        #expect(try await store.manifest(sharedChild.digest, in: self.repository) != nil)
        #expect(try await store.manifest(taggedSbom.digest, in: self.repository) != nil)
        #expect(try await store.manifest(untaggedAlone.digest, in: self.repository) != nil)
        #expect(try await store.blob(shared.digest, in: self.repository) == shared)
        #expect(try await store.blob(loose.digest, in: self.repository) == loose)

        // The collected child announced its deletion with a reason.
        let events = try await self.drain(store, sink: self.sinks[0])
        #expect(events.contains { $0.digest == ownChild.digest.description && $0.tag == nil && $0.reason != nil })

        _ = try await store.deleteTag(Contracts.Tag("other")!, in: self.repository, rules: allMutable)
        #expect(try await store.deleteManifest(second.digest, in: self.repository, rules: allMutable))
        collected = try await self.collectAll(store)
        #expect(collected.manifests == 1 && collected.removed == [shared.digest], "\(collected)")
    }

    // MARK: Retention

    /// A retention deletion happens only if the tag still names what was decided on; an immutable
    /// tag needs rules that allow it; the manifest goes with its last tag (its blobs queued), not
    /// while another tag names it; the event carries the reason.
    static func expiredTagsTakeWhatNothingElseKeeps(_ store: some MetadataStore) async throws {
        let layer = self.blob("retention layer")
        let other = self.blob("retention other layer")
        try await store.linkBlob(layer, into: self.repository)
        try await store.linkBlob(other, into: self.repository)
        let twice = self.manifest("tagged twice", blobs: [layer], tags: ["a-SNAPSHOT", "1.0"])
        let once = self.manifest("tagged once", blobs: [other], tags: ["b-SNAPSHOT"])
        try await store.putManifest(twice, rules: immutableUnlessSnapshot)
        try await store.putManifest(once, rules: immutableUnlessSnapshot)
        _ = try await self.drain(store, sink: self.sinks[0])
        // Decided on another manifest: nothing happens.
        #expect(try await !store.expireTag(
            Contracts.Tag("b-SNAPSHOT")!, in: self.repository, naming: twice.digest, reason: "r", rules: immutableUnlessSnapshot
        ))
        // An immutable tag: refused by the rules unless they allow it.
        await #expect(throws: RegistryError.self) {
            try await store.expireTag(
                Contracts.Tag("1.0")!, in: self.repository, naming: twice.digest, reason: "r", rules: immutableUnlessSnapshot
            )
        }
        #expect(try await store.expireTag(
            Contracts.Tag("a-SNAPSHOT")!, in: self.repository, naming: twice.digest, reason: "keep last 1", rules: immutableUnlessSnapshot
        ))
        // Still tagged 1.0: the manifest stays.
        #expect(try await store.manifest(twice.digest, in: self.repository) != nil)
        #expect(try await store.expireTag(
            Contracts.Tag("b-SNAPSHOT")!, in: self.repository, naming: once.digest, reason: "keep last 1", rules: immutableUnlessSnapshot
        ))
        #expect(try await store.manifest(once.digest, in: self.repository) == nil)
        let events = try await self.drain(store, sink: self.sinks[0])
        #expect(events.map(\.tag) == ["a-SNAPSHOT", "b-SNAPSHOT"] && events.allSatisfy { $0.reason == "keep last 1" }, "\(events)")
        // Its blob is queued: the collector takes it.
        #expect(try await self.collectAll(store).removed == [other.digest])
        #expect(try await store.expireTag(
            Contracts.Tag("1.0")!, in: self.repository, naming: twice.digest, reason: "r", rules: allMutable
        ))
        #expect(try await store.manifest(twice.digest, in: self.repository) == nil)
    }

    /// Untagged manifests are listed and expired only when nothing keeps them and they were
    /// pushed before the cutoff; pulls mark the tags naming a manifest.
    static func untaggedManifestsExpireAndPullsAreRecorded(_ store: some MetadataStore) async throws {
        let layer = self.blob("untagged layer")
        try await store.linkBlob(layer, into: self.repository)
        let loose = self.manifest("loose", blobs: [layer], tags: [])
        let child = self.manifest("kept child", blobs: [layer], tags: [])
        var index = self.manifest("its index", blobs: [], tags: ["multi"])
        index.document.mediaType = MediaType.ociIndex
        index.document.manifests = [child.digest]
        var signature = self.manifest("kept signature", blobs: [layer], tags: [])
        signature.document.subject = index.digest
        for put in [loose, child, index, signature] { try await store.putManifest(put, rules: allMutable) }
        let past = Int64(Date().timeIntervalSince1970 * 1000) - 60_000
        let future = Int64(Date().timeIntervalSince1970 * 1000) + 60_000
        #expect(try await store.untaggedManifests(in: self.repository, pushedBefore: past, page: .init()).items.isEmpty)
        let listed = try await store.untaggedManifests(in: self.repository, pushedBefore: future, page: .init())
        #expect(listed.items.map(\.digest) == [loose.digest] && listed.items[0].totalSize > 0, "\(listed)")
        #expect(try await !store.expireManifest(loose.digest, in: self.repository, pushedBefore: past, reason: "r"))
        #expect(try await !store.expireManifest(child.digest, in: self.repository, pushedBefore: future, reason: "r"))
        #expect(try await !store.expireManifest(signature.digest, in: self.repository, pushedBefore: future, reason: "r"))
        #expect(try await store.expireManifest(loose.digest, in: self.repository, pushedBefore: future, reason: "untagged 7d"))
        #expect(try await store.manifest(loose.digest, in: self.repository) == nil)
        let events = try await self.drain(store, sink: self.sinks[0])
        #expect(events.contains { $0.tag == nil && $0.digest == loose.digest.description && $0.reason == "untagged 7d" })

        let pulled = Int64(Date().timeIntervalSince1970 * 1000) - 5000
        try await store.recordPulls([PullRecord(repository: self.repository, digest: index.digest, millis: pulled)])
        // An older pull does not move it back.
        try await store.recordPulls([PullRecord(repository: self.repository, digest: index.digest, millis: pulled - 1000)])
        let details = try #require(try await store.tagDetails(in: self.repository, page: .init()))
        #expect(details.items.first { $0.name == "multi" }?.pulledMillis == pulled)
    }

    /// The orphan scan's question: which stored locations no row (and no trash entry) holds.
    static func unknownLocationsAreThoseNoRowHolds(_ store: some MetadataStore) async throws {
        let kept = self.blob("located kept")
        let trashed = self.blob("located trashed")
        try await store.linkBlob(kept, into: self.repository)
        try await store.linkBlob(trashed, into: self.repository)
        try await store.putManifest(self.manifest("keeps a location", blobs: [kept], tags: ["1.0"]), rules: allMutable)
        #expect(try await store.unlinkBlob(trashed.digest, from: self.repository))
        let future = Int64(Date().timeIntervalSince1970 * 1000) + 600_000
        #expect(try await store.collectGarbage(queuedBefore: future, limit: 100).removed == [trashed])
        // Removed, its deletion not confirmed: still known (the collector deletes it).
        let asked = [kept.location, trashed.location, "blobs/nobody", kept.location + "-copy"]
        #expect(try await store.unknownLocations(asked) == ["blobs/nobody", kept.location + "-copy"])
        try await store.purgeCollected([trashed.location])
        #expect(try await store.unknownLocations(asked) == [trashed.location, "blobs/nobody", kept.location + "-copy"])
        #expect(try await store.unknownLocations([]).isEmpty)
    }

    /// One holder at a time: another gets the lease only once it lapsed; the holder renews it.
    static func leasesHaveOneHolder(_ store: some MetadataStore) async throws {
        #expect(try await store.lease("collector", holder: "a", seconds: 60))
        #expect(try await !store.lease("collector", holder: "b", seconds: 60))
        #expect(try await store.lease("collector", holder: "a", seconds: 60))
        // Another name is another lease.
        #expect(try await store.lease("retention", holder: "b", seconds: 60))
        // A lapsed lease goes to whoever asks next.
        #expect(try await store.lease("expiring", holder: "a", seconds: 1))
        try await Task.sleep(for: .milliseconds(1200))
        #expect(try await store.lease("expiring", holder: "b", seconds: 60))
        #expect(try await !store.lease("expiring", holder: "a", seconds: 60))
    }

    // MARK: The Pier One API

    /// The outbox sinks the suites open their stores with.
    static let sinks = ["webhook:a", "sns:b"]

    /// Pushes an image of one layer and a config to `repository` with `tags`.
    @discardableResult
    static func pushImage(
        _ seed: String, to repository: RepositoryName, tags: [String], layerSize: Int = 100, store: some MetadataStore
    ) async throws -> ManifestPut {
        let config = BlobRecord(digest: self.digest("config-" + seed), size: 10, location: "blobs/config-\(seed)")
        let layer = BlobRecord(digest: self.digest("layer-" + seed), size: Int64(layerSize), location: "blobs/layer-\(seed)")
        try await store.linkBlob(config, into: repository)
        try await store.linkBlob(layer, into: repository)
        var put = self.manifest(seed, blobs: [config, layer], tags: tags, in: repository)
        put.document.config = config.digest
        try await store.putManifest(put, rules: immutableUnlessSnapshot)
        return put
    }

    static func teamsAndArtifactsAreThoseWithTags(_ store: some MetadataStore) async throws {
        try await self.pushImage("a", to: RepositoryName("alpha/app")!, tags: ["1"], store: store)
        try await self.pushImage("b", to: RepositoryName("alpha/group/tool")!, tags: ["1"], store: store)
        try await self.pushImage("c", to: RepositoryName("beta/app")!, tags: ["1"], store: store)
        // A repository with blobs but no tag, and a team whose name extends another's.
        try await store.linkBlob(self.blob("x"), into: RepositoryName("gamma/app")!)
        try await self.pushImage("d", to: RepositoryName("alpha-two/app")!, tags: ["1"], store: store)
        #expect(try await store.teams(page: PageRequest()).items == ["alpha", "alpha-two", "beta"])
        let first = try await store.teams(page: PageRequest(limit: 2))
        #expect(first == Page(items: ["alpha", "alpha-two"], hasMore: true))
        #expect(try await store.teams(page: PageRequest(limit: 2, after: "alpha-two")) == Page(items: ["beta"], hasMore: false))
        #expect(try await store.artifacts(ofTeam: "alpha", page: PageRequest()).items == ["app", "group/tool"])
        #expect(try await store.artifacts(ofTeam: "alpha", page: PageRequest(limit: 1)) == Page(items: ["app"], hasMore: true))
        #expect(try await store.artifacts(ofTeam: "alpha", page: PageRequest(after: "app")).items == ["group/tool"])
        #expect(try await store.artifacts(ofTeam: "gamma", page: PageRequest()).items.isEmpty)
        #expect(try await store.artifacts(ofTeam: "nobody", page: PageRequest()).items.isEmpty)
    }

    static func tagDetailsAreOldestFirstWithSizes(_ store: some MetadataStore) async throws {
        #expect(try await store.tagDetails(in: self.repository, page: PageRequest()) == nil)
        let first = try await self.pushImage("a", to: self.repository, tags: ["b-first"], layerSize: 1000, store: store)
        try await Task.sleep(for: .milliseconds(5))
        let second = try await self.pushImage("b", to: self.repository, tags: ["a-second", "c-SNAPSHOT"], store: store)
        try await Task.sleep(for: .milliseconds(5))
        // Moving the snapshot makes it the newest, as the original counted an overwrite as a new tag.
        let third = try await self.pushImage("c", to: self.repository, tags: ["c-SNAPSHOT"], store: store)
        let all = try #require(try await store.tagDetails(in: self.repository, page: PageRequest()))
        #expect(all.items.map(\.name) == ["b-first", "a-second", "c-SNAPSHOT"])
        let detail = all.items[0]
        #expect(detail.manifestDigest == first.digest)
        #expect(detail.imageID == first.document.config)
        #expect(detail.mediaType == MediaType.ociManifest)
        #expect(detail.totalSize == Int64(first.bytes.readableBytes) + 10 + 1000)
        #expect(detail.createdBy == "tester")
        #expect(abs(detail.createdMillis - Int64(Date().timeIntervalSince1970 * 1000)) < 60_000)
        #expect(all.items[2].manifestDigest == third.digest)
        #expect(all.items[0].createdMillis <= all.items[1].createdMillis)
        let page = try #require(try await store.tagDetails(in: self.repository, page: PageRequest(limit: 1, after: "b-first")))
        #expect(page.items.map(\.name) == ["a-second"])
        #expect(page.hasMore)
        #expect(page.items[0].manifestDigest == second.digest)
    }

    static func imageIDPrefixesFindTags(_ store: some MetadataStore) async throws {
        let put = try await self.pushImage("a", to: self.repository, tags: ["1.0", "1.0-SNAPSHOT"], store: store)
        let copy = RepositoryName("other/copy")!
        var again = put
        again.repository = copy
        try await store.linkBlob(BlobRecord(digest: put.document.config!, size: 10, location: "c"), into: copy)
        try await store.linkBlob(BlobRecord(digest: put.document.blobs[1], size: 100, location: "l"), into: copy)
        again.tags = [Contracts.Tag("2.0")!]
        try await store.putManifest(again, rules: immutableUnlessSnapshot)
        try await self.pushImage("b", to: self.repository, tags: ["other"], store: store)
        let id = put.document.config!.description
        let expected = [
            ImageTagReference(name: "2.0", team: "other", artifact: "copy"),
            ImageTagReference(name: "1.0", team: "team", artifact: "app"),
            ImageTagReference(name: "1.0-SNAPSHOT", team: "team", artifact: "app"),
        ]
        #expect(try await store.imageTags(idPrefix: String(id.prefix(7 + 12))) == .tags(expected))
        #expect(try await store.imageTags(idPrefix: id) == .tags(expected))
        #expect(try await store.imageTags(idPrefix: "sha256:") == .ambiguous)
        let other = try #require(try await store.tagDetails(in: self.repository, page: PageRequest()))
            .items.first { $0.name == "other" }!.imageID.description
        let absent = try #require("0123456789abcdef".map { "sha256:\($0)" }.first { !id.hasPrefix($0) && !other.hasPrefix($0) })
        #expect(try await store.imageTags(idPrefix: absent) == .none)
        // A manifest whose tags are all gone is not found.
        _ = try await store.deleteTag(Contracts.Tag("other")!, in: self.repository, rules: allMutable)
        #expect(try await store.imageTags(idPrefix: other) == .none)
    }

    static func statisticsCountTagsAndStorage(_ store: some MetadataStore) async throws {
        #expect(try await store.statistics() == RegistryStatistics(teams: 0, artifacts: 0, tags: 0, storage: 0))
        try await self.pushImage("a", to: RepositoryName("alpha/app")!, tags: ["1", "2"], layerSize: 100, store: store)
        try await self.pushImage("b", to: RepositoryName("alpha/tool")!, tags: ["1"], layerSize: 200, store: store)
        try await self.pushImage("c", to: RepositoryName("beta/app")!, tags: ["1"], layerSize: 400, store: store)
        // The same layer in two repositories of one team counts once for the team.
        let shared = BlobRecord(digest: self.digest("layer-a"), size: 100, location: "blobs/layer-a")
        try await store.linkBlob(shared, into: RepositoryName("alpha/tool")!)
        #expect(try await store.statistics() == RegistryStatistics(teams: 2, artifacts: 3, tags: 4, storage: 730))
        // Blobs: each image's config and layer; the shared layer once for alpha.
        let alpha = TeamStatistics(team: "alpha", artifacts: 2, tags: 3, storage: 320, blobs: 4)
        let beta = TeamStatistics(team: "beta", artifacts: 1, tags: 1, storage: 410, blobs: 2)
        #expect(try await store.teamStatistics(page: PageRequest()) == Page(items: [alpha, beta], hasMore: false))
        #expect(try await store.teamStatistics(page: PageRequest(limit: 1)) == Page(items: [alpha], hasMore: true))
        #expect(try await store.teamStatistics(page: PageRequest(after: "alpha")) == Page(items: [beta], hasMore: false))
        #expect(try await store.teamStatistics(team: "beta") == beta)
        #expect(try await store.teamStatistics(team: "nobody") == nil)
        // Per artifact: its own blobs each once (the shared layer counts for tool too).
        let artifacts = try await store.artifactStatistics(ofTeam: "alpha", page: PageRequest())
        #expect(artifacts.items.map(\.artifact) == ["app", "tool"] && !artifacts.hasMore)
        #expect(artifacts.items.map(\.tags) == [2, 1])
        #expect(artifacts.items.map(\.blobs) == [2, 3])
        #expect(artifacts.items.map(\.storage) == [110, 310])
        #expect(artifacts.items.allSatisfy { $0.lastPushMillis > 0 })
        let first = try await store.artifactStatistics(ofTeam: "alpha", page: PageRequest(limit: 1))
        #expect(first.items.map(\.artifact) == ["app"] && first.hasMore)
        #expect(try await store.artifactStatistics(ofTeam: "alpha", page: PageRequest(after: "app")).items.map(\.artifact) == ["tool"])
        #expect(try await store.artifactStatistics(ofTeam: "nobody", page: PageRequest()).items.isEmpty)
    }

    static func headerScmSourceWinsOverLayer(_ store: some MetadataStore) async throws {
        let put = try await self.pushImage("a", to: self.repository, tags: ["1.0"], store: store)
        let tag = Contracts.Tag("1.0")!
        #expect(try await store.scmSource(of: tag, in: self.repository) == nil)
        let layer = ScmSource(url: "git:layer", revision: "1", author: "a", status: "", origin: .layer, createdMillis: 1000)
        try await store.recordScmSource(layer, for: put.digest, in: self.repository)
        #expect(try await store.scmSource(of: tag, in: self.repository) == layer)
        let header = ScmSource(url: "git:header", revision: "2", author: "b", status: nil, origin: .header, createdMillis: 2000)
        try await store.recordScmSource(header, for: put.digest, in: self.repository)
        #expect(try await store.scmSource(of: tag, in: self.repository) == header)
        // A later layer scan does not replace what the trusted pusher said.
        try await store.recordScmSource(layer, for: put.digest, in: self.repository)
        #expect(try await store.scmSource(of: tag, in: self.repository) == header)
        // Given with the push, it is stored in the push's transaction.
        var withSource = self.manifest("b", blobs: [], tags: ["2.0"])
        withSource.scmSource = header
        try await store.putManifest(withSource, rules: immutableUnlessSnapshot)
        #expect(try await store.scmSource(of: Contracts.Tag("2.0")!, in: self.repository)?.url == "git:header")
        // Unknown manifests are ignored.
        try await store.recordScmSource(layer, for: self.digest("nothing"), in: self.repository)
        #expect(try await store.scmSource(of: Contracts.Tag("nope")!, in: self.repository) == nil)
    }

    /// The entries of one sink, delivered (completed) as they are read.
    static func drain(_ store: some MetadataStore, sink: String) async throws -> [TagEvent] {
        let entries = try await store.claimNotifications(sink: sink, limit: 100, lease: .seconds(60))
        for entry in entries { try await store.completeNotification(id: entry.id) }
        return try entries.map { try JSONDecoder().decode(TagEvent.self, from: Data($0.payload.utf8)) }
    }

    static func tagChangesAreWrittenToTheOutbox(_ store: some MetadataStore) async throws {
        let first = try await self.pushImage("a", to: self.repository, tags: ["1.0", "1-SNAPSHOT"], store: store)
        // An identical re-push changes nothing and announces nothing.
        try await store.putManifest(first, rules: immutableUnlessSnapshot)
        let moved = try await self.pushImage("b", to: self.repository, tags: ["1-SNAPSHOT"], store: store)
        // A refused move announces nothing either.
        await #expect(throws: RegistryError.self) {
            try await self.pushImage("c", to: self.repository, tags: ["1.0"], store: store)
        }
        #expect(try await store.notificationBacklog() == ["webhook:a": 3, "sns:b": 3])
        for sink in self.sinks {
            let events = try await self.drain(store, sink: sink)
            #expect(events.map(\.tag) == ["1.0", "1-SNAPSHOT", "1-SNAPSHOT"])
            #expect(events.map(\.action) == [.created, .created, .moved])
            #expect(events.map(\.digest) == [first.digest.description, first.digest.description, moved.digest.description])
            #expect(events[2].previousDigest == first.digest.description)
            #expect(events.allSatisfy { $0.team == "team" && $0.artifact == "app" && $0.pushedBy == "tester" })
        }
        let ids = try await self.drain(store, sink: "webhook:a")
        #expect(ids.isEmpty)
        #expect(try await store.notificationBacklog().isEmpty)
        // A refused delete announces nothing; deleting a tag, and a manifest with its tags,
        // announces each tag removed.
        await #expect(throws: RegistryError.self) {
            _ = try await store.deleteManifest(moved.digest, in: self.repository, rules: allImmutable)
        }
        #expect(try await store.notificationBacklog().isEmpty)
        #expect(try await store.deleteTag(Contracts.Tag("1-SNAPSHOT")!, in: self.repository, rules: allMutable))
        #expect(try await store.deleteManifest(first.digest, in: self.repository, rules: allMutable))
        let deleted = try await self.drain(store, sink: "sns:b")
        #expect(deleted.map(\.action) == [.deleted, .deleted])
        #expect(deleted.map(\.tag) == ["1-SNAPSHOT", "1.0"])
        #expect(deleted.map(\.digest) == [moved.digest.description, first.digest.description])
    }

    static func outboxClaimsLeaseAndRetry(_ store: some MetadataStore) async throws {
        try await self.pushImage("a", to: self.repository, tags: ["1", "2", "3"], store: store)
        let claimed = try await store.claimNotifications(sink: "webhook:a", limit: 2, lease: .seconds(60))
        #expect(claimed.count == 2)
        #expect(claimed.allSatisfy { $0.attempts == 1 })
        // Leased entries are not claimed again; the third is.
        let rest = try await store.claimNotifications(sink: "webhook:a", limit: 10, lease: .seconds(60))
        #expect(rest.count == 1)
        #expect(Set(claimed.map(\.id) + rest.map(\.id)).count == 3)
        // A refused delivery comes back after its delay, counted.
        try await store.postponeNotification(id: rest[0].id, delay: .zero, error: "HTTP 500")
        let again = try await store.claimNotifications(sink: "webhook:a", limit: 10, lease: .milliseconds(1))
        #expect(again.map(\.id) == [rest[0].id])
        #expect(again.first?.attempts == 2)
        // An expired lease (a claimer that died) makes the entry due again.
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await store.claimNotifications(sink: "webhook:a", limit: 10, lease: .seconds(60)).map(\.id) == [rest[0].id])
        // The other sink's entries are its own.
        #expect(try await store.claimNotifications(sink: "sns:b", limit: 10, lease: .seconds(60)).count == 3)
        for entry in claimed { try await store.completeNotification(id: entry.id) }
        #expect(try await store.notificationBacklog()["webhook:a"] == 1)
    }

    /// A descriptor's declared size must be the stored blob's (checked where the manifest is stored).
    static func declaredSizesMustMatchTheStoredBlobs(_ store: some MetadataStore) async throws {
        let layer = self.blob("sized layer")
        try await store.linkBlob(layer, into: self.repository)
        var put = self.manifest("sized", blobs: [layer], tags: ["1.0"])
        put.document.declaredSizes = [layer.digest.description: layer.size + 1]
        do {
            try await store.putManifest(put, rules: immutableUnlessSnapshot)
            Issue.record("a manifest declaring a wrong size was stored")
        } catch let error as RegistryError {
            #expect(error.code == .manifestInvalid)
            #expect(error.detail?["stored"] == String(layer.size))
        }
        #expect(try await store.manifest(put.digest, in: self.repository) == nil)
        put.document.declaredSizes = [layer.digest.description: layer.size]
        try await store.putManifest(put, rules: immutableUnlessSnapshot)
        #expect(try await store.manifest(put.digest, in: self.repository) != nil)
    }

    /// Limits from callers of the internal API are clamped, never trapped on (`prefix(-1)`).
    static func anyPageLimitIsServed(_ store: some MetadataStore) async throws {
        let layer = self.blob("paged layer")
        try await store.linkBlob(layer, into: self.repository)
        try await store.putManifest(self.manifest("paged", blobs: [layer], tags: ["1.0"]), rules: immutableUnlessSnapshot)
        for limit in [-1, Int.min, 0, Int.max] {
            let page = PageRequest(limit: limit)
            let expected = limit > 0 ? 1 : 0
            #expect(try await store.repositories(page: page).items.count == expected, "\(limit)")
            #expect(try await store.tags(in: self.repository, page: page)?.items.count == expected, "\(limit)")
            #expect(try await store.teams(page: page).items.count == expected, "\(limit)")
            #expect(try await store.artifacts(ofTeam: "team", page: page).items.count == expected, "\(limit)")
            #expect(try await store.tagDetails(in: self.repository, page: page)?.items.count == expected, "\(limit)")
            #expect(try await store.teamStatistics(page: page).items.count == expected, "\(limit)")
            _ = try await store.referrers(of: layer.digest, in: self.repository, artifactType: nil, page: page)
        }
    }

    static let all: [(String, @Sendable (any MetadataStore) async throws -> Void)] = [
        ("declaredSizesMustMatchTheStoredBlobs", { try await declaredSizesMustMatchTheStoredBlobs($0) }),
        ("anyPageLimitIsServed", { try await anyPageLimitIsServed($0) }),
        ("deletesRespectPolicyAndUse", { try await deletesRespectPolicyAndUse($0) }),
        ("referrersAreFilteredAndPaged", { try await referrersAreFilteredAndPaged($0) }),
        ("mountsLinkFromPermittedSourcesOnly", { try await mountsLinkFromPermittedSourcesOnly($0) }),
        ("garbageIsReviewedAfterTheCutoff", { try await garbageIsReviewedAfterTheCutoff($0) }),
        ("unconfirmedCollectionsAreHandedOutAgain", { try await unconfirmedCollectionsAreHandedOutAgain($0) }),
        ("garbageFollowsIndexesAndReferrers", { try await garbageFollowsIndexesAndReferrers($0) }),
        ("leasesHaveOneHolder", { try await leasesHaveOneHolder($0) }),
        ("unknownLocationsAreThoseNoRowHolds", { try await unknownLocationsAreThoseNoRowHolds($0) }),
        ("expiredTagsTakeWhatNothingElseKeeps", { try await expiredTagsTakeWhatNothingElseKeeps($0) }),
        ("untaggedManifestsExpireAndPullsAreRecorded", { try await untaggedManifestsExpireAndPullsAreRecorded($0) }),
        ("blobsAreLinkedPerRepository", { try await blobsAreLinkedPerRepository($0) }),
        ("manifestNeedsItsBlobsInTheRepository", { try await manifestNeedsItsBlobsInTheRepository($0) }),
        ("storesManifestBytesAndTags", { try await storesManifestBytesAndTags($0) }),
        ("immutableTagsDoNotMove", { try await immutableTagsDoNotMove($0) }),
        ("mutableTagsMove", { try await mutableTagsMove($0) }),
        ("newestTagIsTheLastCreated", { try await newestTagIsTheLastCreated($0) }),
        ("listingsArePagedInLexicalOrder", { try await listingsArePagedInLexicalOrder($0) }),
        ("concurrentPushesToOneTagHaveOneWinner", { try await concurrentPushesToOneTagHaveOneWinner($0) }),
        ("teamsAndArtifactsAreThoseWithTags", { try await teamsAndArtifactsAreThoseWithTags($0) }),
        ("tagDetailsAreOldestFirstWithSizes", { try await tagDetailsAreOldestFirstWithSizes($0) }),
        ("imageIDPrefixesFindTags", { try await imageIDPrefixesFindTags($0) }),
        ("statisticsCountTagsAndStorage", { try await statisticsCountTagsAndStorage($0) }),
        ("headerScmSourceWinsOverLayer", { try await headerScmSourceWinsOverLayer($0) }),
        ("tagChangesAreWrittenToTheOutbox", { try await tagChangesAreWrittenToTheOutbox($0) }),
        ("outboxClaimsLeaseAndRetry", { try await outboxClaimsLeaseAndRetry($0) }),
    ]
}

/// Deterministic digests for test data without depending on the hashing module.
enum DigestHasherStandIn {
    static func sha256(_ seed: String) -> Digest {
        var hex = ""
        var state: UInt64 = 1_469_598_103_934_665_603
        for byte in seed.utf8 {
            state = (state ^ UInt64(byte)) &* 1_099_511_628_211
        }
        while hex.count < 64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            hex += String(format: "%016llx", state)
        }
        return Digest(algorithm: .sha256, hex: String(hex.prefix(64)))!
    }
}
