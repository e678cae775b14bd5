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
        StreamingHasherStandIn.sha256(seed)
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

    static let immutableUnlessSnapshot: @Sendable (Contracts.Tag) -> Bool = { !$0.value.hasSuffix("-SNAPSHOT") }

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
            try await store.putManifest(put, isImmutable: immutableUnlessSnapshot)
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
        try await store.putManifest(put, isImmutable: immutableUnlessSnapshot)
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
        try await store.putManifest(first, isImmutable: immutableUnlessSnapshot)
        // The identical re-push succeeds and changes nothing.
        try await store.putManifest(first, isImmutable: immutableUnlessSnapshot)
        do {
            try await store.putManifest(second, isImmutable: immutableUnlessSnapshot)
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
        try await store.putManifest(self.manifest("a", blobs: [layer], tags: ["1.0-SNAPSHOT"]), isImmutable: immutableUnlessSnapshot)
        let second = self.manifest("b", blobs: [layer], tags: ["1.0-SNAPSHOT"])
        try await store.putManifest(second, isImmutable: immutableUnlessSnapshot)
        #expect(try await store.manifestDigest(tagged: Contracts.Tag("1.0-SNAPSHOT")!, in: self.repository) == second.digest)
    }

    static func newestTagIsTheLastCreated(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        try await store.linkBlob(layer, into: self.repository)
        #expect(try await store.newestTagDigest(in: self.repository) == nil)
        try await store.putManifest(self.manifest("a", blobs: [layer], tags: ["2.0"]), isImmutable: immutableUnlessSnapshot)
        try await Task.sleep(for: .milliseconds(5))
        let newer = self.manifest("b", blobs: [layer], tags: ["1.0"])
        try await store.putManifest(newer, isImmutable: immutableUnlessSnapshot)
        #expect(try await store.newestTagDigest(in: self.repository) == newer.digest)
    }

    static func listingsArePagedInLexicalOrder(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        for name in ["b/x", "a/x", "c/x"] {
            try await store.linkBlob(layer, into: RepositoryName(name)!)
        }
        try await store.linkBlob(layer, into: self.repository)
        for tag in ["3", "1", "2"] {
            try await store.putManifest(self.manifest(tag, blobs: [layer], tags: [tag]), isImmutable: immutableUnlessSnapshot)
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
                        try await store.putManifest(put, isImmutable: immutableUnlessSnapshot)
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
        try await store.putManifest(image, isImmutable: immutableUnlessSnapshot)
        // The immutable tag cannot go, neither alone nor with its manifest.
        await #expect(throws: RegistryError.tagImmutableDelete(repository: self.repository, tag: "1.0")) {
            _ = try await store.deleteTag(Contracts.Tag("1.0")!, in: self.repository, isImmutable: immutableUnlessSnapshot)
        }
        await #expect(throws: RegistryError.tagImmutableDelete(repository: self.repository, tag: "1.0")) {
            _ = try await store.deleteManifest(image.digest, in: self.repository, isImmutable: immutableUnlessSnapshot)
        }
        // A blob a manifest uses cannot be unlinked.
        await #expect(throws: RegistryError.inUse("blob \(layer.digest)", by: image.digest, in: self.repository)) {
            _ = try await store.unlinkBlob(layer.digest, from: self.repository)
        }
        #expect(try await store.deleteTag(Contracts.Tag("dev-SNAPSHOT")!, in: self.repository, isImmutable: immutableUnlessSnapshot))
        #expect(try await !store.deleteTag(Contracts.Tag("dev-SNAPSHOT")!, in: self.repository, isImmutable: immutableUnlessSnapshot))
        #expect(try await store.deleteManifest(image.digest, in: self.repository, isImmutable: { _ in false }))
        #expect(try await store.manifest(image.digest, in: self.repository) == nil)
        #expect(try await store.manifestDigest(tagged: Contracts.Tag("1.0")!, in: self.repository) == nil)
        #expect(try await store.unlinkBlob(layer.digest, from: self.repository))
        #expect(try await store.blob(layer.digest, in: self.repository) == nil)
        #expect(try await !store.unlinkBlob(layer.digest, from: self.repository))
        #expect(try await !store.deleteManifest(image.digest, in: self.other, isImmutable: { _ in false }))
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
            try await store.putManifest(put, isImmutable: immutableUnlessSnapshot)
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

    static func linkedBlobIsFoundInAnyRepository(_ store: some MetadataStore) async throws {
        let layer = self.blob("layer")
        #expect(try await store.linkedBlob(layer.digest) == nil)
        try await store.linkBlob(layer, into: self.other)
        #expect(try await store.linkedBlob(layer.digest) == layer)
        _ = try await store.unlinkBlob(layer.digest, from: self.other)
        #expect(try await store.linkedBlob(layer.digest) == nil)
    }

    static let all: [(String, @Sendable (any MetadataStore) async throws -> Void)] = [
        ("deletesRespectPolicyAndUse", { try await deletesRespectPolicyAndUse($0) }),
        ("referrersAreFilteredAndPaged", { try await referrersAreFilteredAndPaged($0) }),
        ("linkedBlobIsFoundInAnyRepository", { try await linkedBlobIsFoundInAnyRepository($0) }),
        ("blobsAreLinkedPerRepository", { try await blobsAreLinkedPerRepository($0) }),
        ("manifestNeedsItsBlobsInTheRepository", { try await manifestNeedsItsBlobsInTheRepository($0) }),
        ("storesManifestBytesAndTags", { try await storesManifestBytesAndTags($0) }),
        ("immutableTagsDoNotMove", { try await immutableTagsDoNotMove($0) }),
        ("mutableTagsMove", { try await mutableTagsMove($0) }),
        ("newestTagIsTheLastCreated", { try await newestTagIsTheLastCreated($0) }),
        ("listingsArePagedInLexicalOrder", { try await listingsArePagedInLexicalOrder($0) }),
        ("concurrentPushesToOneTagHaveOneWinner", { try await concurrentPushesToOneTagHaveOneWinner($0) }),
    ]
}

/// Deterministic digests for test data without depending on the hashing module.
enum StreamingHasherStandIn {
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
