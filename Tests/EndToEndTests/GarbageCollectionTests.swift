import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PierOneApp
import Runtime
import TestSupport
import Testing

/// Online garbage collection against the real stores: what a deleted image leaves is deleted from
/// the disk after the grace period, and pushes racing the collector never lose a referenced blob.
@Suite(.serialized) struct GarbageCollectionTests {
    /// Every file under `blobs/` of the storage directory.
    static func blobFiles(_ directory: URL) -> Set<String> {
        let root = directory.appendingPathComponent("blobs")
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return [] }
        var files = Set<String>()
        while let path = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root.appendingPathComponent(path).path, isDirectory: &isDirectory),
               !isDirectory.boolValue
            {
                files.insert(path)
            }
        }
        return files
    }

    /// Waits until `condition` holds (the collector runs every second with a 1 s grace period).
    static func eventually(_ what: Comment, within limit: Duration = .seconds(20), _ condition: () async throws -> Bool)
        async throws
    {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record(what)
    }

    /// Push, delete, wait out the grace period: the deleted image's own blobs are gone from the disk,
    /// what another image still uses stays and reads back.
    @Test(arguments: Backend.allCases) func aDeletedImagesBlobsLeaveTheDisk(_ backend: Backend) async throws {
        // 3 s: on a loaded CI machine a whole push took longer than 1 s five times in a row.
        try await RegistryHarness.withRegistry(backend, configure: { $0.gcGracePeriod = .seconds(3) }) { registry in
            // On a loaded machine an upload may wait longer than the grace period for its manifest:
            // the push then uploads again, as a client would.
            let kept = try #require(try await Self.push(registry, to: "team/app", tag: "1.0", layers: ["shared layer", "kept layer"]))
            let dropped = try #require(try await Self.push(
                registry, to: "team/app", tag: "2.0-SNAPSHOT", config: #"{"dropped":true}"#, layers: ["shared layer", "dropped layer"]
            ))
            let droppedOnly = DigestHasher.digest(of: ByteBuffer(string: "dropped layer"))
            let droppedConfig = DigestHasher.digest(of: ByteBuffer(string: #"{"dropped":true}"#))
            let files = Self.blobFiles(registry.directory)
            #expect(files.contains { $0.contains(droppedOnly.hex) } && files.contains { $0.contains(droppedConfig.hex) })
            #expect(try await registry.request(.delete, "/v2/team/app/manifests/\(dropped)").status == .accepted)
            try await Self.eventually("the dropped image's blobs are deleted from the disk") {
                let now = Self.blobFiles(registry.directory)
                return !now.contains { $0.contains(droppedOnly.hex) || $0.contains(droppedConfig.hex) }
            }
            #expect(try await registry.request(.head, "/v2/team/app/blobs/\(droppedOnly)").status == .notFound)
            // The kept image is whole: its manifest, and every blob by its digest.
            let manifest = try await registry.request(.get, "/v2/team/app/manifests/1.0")
            #expect(manifest.status == .ok && DigestHasher.digest(of: manifest.body) == kept)
            for layer in ["shared layer", "kept layer", "{}"] {
                let digest = DigestHasher.digest(of: ByteBuffer(string: layer))
                let blob = try await registry.request(.get, "/v2/team/app/blobs/\(digest)")
                #expect(blob.status == .ok && String(buffer: blob.body) == layer, "\(layer)")
            }
            // A blob uploaded and never referenced goes too; the same digest pushed again works.
            let orphan = try await registry.pushBlob(ByteBuffer(string: "never referenced"), to: "team/app")
            try await Self.eventually("an unreferenced upload is collected") {
                try await registry.request(.head, "/v2/team/app/blobs/\(orphan)").status == .notFound
            }
            // The row goes first, the bytes right after (the collector deletes what it removed
            // once its review committed): a HEAD may already answer 404 while the file is there.
            try await Self.eventually("an unreferenced upload's bytes leave the disk") {
                !Self.blobFiles(registry.directory).contains { $0.contains(orphan.hex) }
            }
            _ = try #require(try await Self.push(registry, to: "team/app", tag: "3.0", layers: ["never referenced"]))
            let again = try await registry.request(.get, "/v2/team/app/blobs/\(orphan)")
            #expect(again.status == .ok && String(buffer: again.body) == "never referenced")
            // The collector's metrics count what it did.
            let metrics = String(buffer: try await registry.request(.get, "/metrics").body)
            #expect(metrics.contains("pierone_gc_deleted_blobs_total"))
        }
    }

    /// Clients (each on its own connection) push images that share layers, delete some and push again, while the collector runs
    /// every second with no grace period at all: a push may be refused (the collector took a link
    /// it had just made) and then uploads again, but every image that was answered 201 and not
    /// deleted reads back whole, every blob matching its digest.
    @Test(arguments: Backend.allCases) func pushesRacingTheCollectorLoseNothing(_ backend: Backend) async throws {
        try await RegistryHarness.withRegistry(backend, configure: { $0.gcGracePeriod = .zero }, client: .ahc()) { registry in
            let shared = (0..<4).map { "shared layer \($0) " + String(repeating: "x", count: 2000) }
            let pushed = try await withThrowingTaskGroup(of: [(String, Digest, [String])].self) { group in
                for client in 0..<4 {
                    group.addTask {
                        var kept: [(String, Digest, [String])] = []
                        for round in 0..<12 {
                            let layers = [shared[(client + round) % 4], shared[(client + round + 1) % 4], "own \(client) \(round)"]
                            let tag = "c\(client)-r\(round)-SNAPSHOT"
                            guard let digest = try await Self.push(registry, to: "team/race", tag: tag, layers: layers) else { continue }
                            if round % 3 == 2 {
                                #expect(try await registry.request(.delete, "/v2/team/race/manifests/\(digest)").status == .accepted)
                            } else {
                                kept.append((tag, digest, layers))
                            }
                        }
                        return kept
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(pushed.count >= 4 * 8 - 4, "most pushes succeed within their retries: \(pushed.count)")
            // Let the collector run on what is left, then read every kept image back.
            try await Task.sleep(for: .seconds(3))
            for (tag, digest, layers) in pushed {
                let manifest = try await registry.request(.get, "/v2/team/race/manifests/\(tag)")
                #expect(manifest.status == .ok && DigestHasher.digest(of: manifest.body) == digest, "\(tag)")
                for layer in layers + ["{}"] {
                    let blob = try await registry.request(.get, "/v2/team/race/blobs/\(DigestHasher.digest(of: ByteBuffer(string: layer)))")
                    #expect(blob.status == .ok && String(buffer: blob.body) == layer, "\(tag): \(layer.prefix(20))")
                }
            }
        }
    }

    /// Indexes with a child of their own and a child every index shares, each signed by a referrer,
    /// pushed by clients (each on its own connection) while the collector runs with no grace period, on the filesystem and on
    /// S3; some indexes are deleted (their own child and signature are collected with them). Every index answered 201 and not
    /// deleted reads back with both children, its referrer, and every blob matching its digest.
    @Test(arguments: Backend.allCases, [false, true])
    func indexesAndReferrersRacingTheCollectorLoseNothing(_ backend: Backend, inS3: Bool) async throws {
        let s3 = inS3 ? S3StorageTests.settings(try await MotoServer.shared()) : nil
        try await RegistryHarness.withRegistry(backend, configure: { $0.gcGracePeriod = .zero; $0.s3 = s3 }, client: .ahc()) { registry in
            let repository = "team/graph"
            let shared = (0..<3).map { "graph shared layer \($0) " + String(repeating: "y", count: 1500) }
            struct Kept: Sendable {
                var tag: String
                var index: Digest
                var manifests: [(Digest, [String])]
            }
            let outcome = try await withThrowingTaskGroup(of: ([Kept], [Digest]).self) { group in
                for client in 0..<3 {
                    group.addTask {
                        var kept: [Kept] = []
                        var collected: [Digest] = []
                        for round in 0..<8 {
                            let tag = "g\(client)-r\(round)-SNAPSHOT"
                            let own = [shared[(client + round) % 3], "graph own \(client) \(round)"]
                            let common = [shared[0]]
                            let signature = ["signature \(client) \(round)"]
                            attempts: for _ in 0..<5 {
                                guard let child = try await Self.pushImage(registry, to: repository, layers: own),
                                      let commonChild = try await Self.pushImage(registry, to: repository, layers: common)
                                else { continue }
                                let index = Manifests.index(
                                    mediaType: MediaType.ociIndex,
                                    manifests: [child, commonChild].map { Manifests.descriptor(MediaType.ociManifest, $0.digest, $0.size) }
                                )
                                let response = try await registry.putManifest(
                                    index, to: repository, reference: tag, mediaType: MediaType.ociIndex
                                )
                                guard response.status == .created else {
                                    // A child collected (the shared one, by another client's delete) meanwhile.
                                    #expect(Registry.errorCode(response) == "MANIFEST_BLOB_UNKNOWN", "\(String(buffer: response.body))")
                                    continue attempts
                                }
                                let indexDigest = DigestHasher.digest(of: index)
                                let subject = Manifests.descriptor(MediaType.ociIndex, indexDigest, index.readableBytes)
                                guard let referrer = try await Self.pushImage(
                                    registry, to: repository, layers: signature,
                                    extra: #","artifactType":"application/x.signature","subject":\#(subject)"#
                                ) else { continue attempts }
                                if round % 3 == 2 {
                                    let deleted = try await registry.request(.delete, "/v2/\(repository)/manifests/\(indexDigest)")
                                    #expect(deleted.status == .accepted)
                                    collected += [child.digest, referrer.digest]
                                } else {
                                    kept.append(Kept(
                                        tag: tag, index: indexDigest,
                                        manifests: [(child.digest, own), (commonChild.digest, common), (referrer.digest, signature)]
                                    ))
                                }
                                break attempts
                            }
                        }
                        return (kept, collected)
                    }
                }
                return try await group.reduce(into: ([Kept](), [Digest]())) { $0.0 += $1.0; $0.1 += $1.1 }
            }
            #expect(outcome.0.count >= 3 * 5 - 3, "most pushes succeed within their retries: \(outcome.0.count)")
            // The deleted indexes' own children and signatures are collected…
            for digest in outcome.1 {
                var collected = false
                // 60 s: twice in full-suite runs on this 2-core machine one case (PostgreSQL, next to the
                // fault tests killing processes) took longer than 20 s; `why` below says what kept it.
                try await Self.eventually("\(digest) of a deleted index is collected", within: .seconds(60)) {
                    collected = try await registry.request(.get, "/v2/\(repository)/manifests/\(digest)").status == .notFound
                    return collected
                }
                if !collected {
                    // What keeps it, for the record.
                    let why = try await registry.request(.get, "/gc/why/\(digest)")
                    Issue.record("\(digest): \(why.status) \(String(buffer: why.body))")
                }
            }
            // …and everything kept reads back whole.
            for kept in outcome.0 {
                let index = try await registry.request(.get, "/v2/\(repository)/manifests/\(kept.tag)")
                #expect(index.status == .ok && DigestHasher.digest(of: index.body) == kept.index, "\(kept.tag)")
                for (digest, layers) in kept.manifests {
                    let manifest = try await registry.request(.get, "/v2/\(repository)/manifests/\(digest)")
                    #expect(manifest.status == .ok && DigestHasher.digest(of: manifest.body) == digest, "\(kept.tag): \(digest)")
                    for layer in layers + ["{}"] {
                        let blob = try await registry.request(
                            .get, "/v2/\(repository)/blobs/\(DigestHasher.digest(of: ByteBuffer(string: layer)))"
                        )
                        #expect(blob.status == .ok && String(buffer: blob.body) == layer, "\(kept.tag): \(layer.prefix(20))")
                    }
                }
                let referrers = try await registry.request(.get, "/v2/\(repository)/referrers/\(kept.index)")
                #expect(String(buffer: referrers.body).contains(kept.manifests[2].0.description), "\(kept.tag)")
            }
        }
    }

    /// Retention in a running registry: of four `-SNAPSHOT` tags the two newest stay, the release
    /// stays, an untagged image goes; the deleted images' own layers then leave the disk.
    @Test(arguments: Backend.allCases) func retentionDeletesWhatItsRulesSelect(_ backend: Backend) async throws {
        let policy = try JSONDecoder().decode(RetentionPolicy.self, from: Data(#"""
            {"rules": [
                {"name": "snapshots", "repositories": ["team/*"], "tags": ["*-SNAPSHOT"], "keepLast": 2},
                {"name": "untagged", "repositories": ["**"], "untaggedFor": "2s"}
            ]}
            """#.utf8))
        try await RegistryHarness.withRegistry(backend, configure: {
            $0.gcGracePeriod = .seconds(1)
            $0.retention = policy
            $0.retentionInterval = .seconds(1)
        }) { registry in
            var snapshots: [String] = []
            for number in 1...4 {
                let tag = "\(number)-SNAPSHOT"
                _ = try #require(try await Self.push(
                    registry, to: "team/kept", tag: tag, config: #"{"n":\#(number)}"#, layers: ["snapshot layer \(number)"]
                ))
                snapshots.append(tag)
            }
            _ = try #require(try await Self.push(registry, to: "team/kept", tag: "1.0", layers: ["release layer"]))
            let untagged = try #require(try await Self.pushImage(registry, to: "team/kept", layers: ["untagged layer"]))
            try await Self.eventually("retention keeps the two newest snapshots and the release") {
                let tags = try await registry.request(.get, "/v2/team/kept/tags/list")
                struct Listing: Decodable { var tags: [String] }
                let names = (try? JSONDecoder().decode(Listing.self, from: Data(String(buffer: tags.body).utf8)))?.tags ?? []
                return Set(names) == ["3-SNAPSHOT", "4-SNAPSHOT", "1.0"]
            }
            try await Self.eventually("the untagged image is deleted") {
                try await registry.request(.get, "/v2/team/kept/manifests/\(untagged.digest)").status == .notFound
            }
            try await Self.eventually("the deleted images' own layers leave the disk") {
                let files = Self.blobFiles(registry.directory)
                return ["snapshot layer 1", "snapshot layer 2", "untagged layer"].allSatisfy { layer in
                    !files.contains { $0.contains(DigestHasher.digest(of: ByteBuffer(string: layer)).hex) }
                }
            }
            for layer in ["snapshot layer 3", "snapshot layer 4", "release layer"] {
                let blob = try await registry.request(.get, "/v2/team/kept/blobs/\(DigestHasher.digest(of: ByteBuffer(string: layer)))")
                #expect(blob.status == .ok && String(buffer: blob.body) == layer)
            }
            let metrics = String(buffer: try await registry.request(.get, "/metrics").body)
            #expect(metrics.contains("pierone_retention_deleted_tags_total "))
        }
    }

    /// `RETENTION_DRY_RUN`: the rules run on schedule and delete nothing.
    @Test func aRetentionDryRunDeletesNothing() async throws {
        let policy = try JSONDecoder().decode(RetentionPolicy.self, from: Data(#"""
            {"rules": [{"repositories": ["**"], "tags": ["*-SNAPSHOT"], "keepLast": 1}]}
            """#.utf8))
        try await RegistryHarness.withRegistry(configure: {
            $0.retention = policy
            $0.retentionInterval = .seconds(1)
            $0.retentionDryRun = true
        }) { registry in
            for number in 1...3 {
                _ = try #require(try await Self.push(
                    registry, to: "team/dry", tag: "\(number)-SNAPSHOT", config: #"{"d":\#(number)}"#, layers: ["dry \(number)"]
                ))
            }
            // Several runs.
            try await Task.sleep(for: .seconds(3))
            for number in 1...3 {
                #expect(try await registry.request(.get, "/v2/team/dry/manifests/\(number)-SNAPSHOT").status == .ok)
            }
        }
    }

    /// A push of `layers` tagged `tag`, uploading again when the collector took a blob between the
    /// upload and the manifest (`MANIFEST_BLOB_UNKNOWN`); nil when every attempt was refused.
    static func push(
        _ registry: Registry, to repository: String, tag: String, config: String = "{}", layers: [String]
    ) async throws -> Digest? {
        try await self.pushImage(registry, to: repository, reference: tag, config: config, layers: layers)?.digest
    }

    /// `push`, by `reference` (nil: by its digest), with `extra` fields; the digest and size.
    static func pushImage(
        _ registry: Registry, to repository: String, reference: String? = nil, config: String = "{}", layers: [String],
        extra: String = ""
    ) async throws -> (digest: Digest, size: Int)? {
        for _ in 0..<5 {
            var descriptors: [String] = []
            let configDigest = try await registry.pushBlob(ByteBuffer(string: config), to: repository)
            for layer in layers {
                let digest = try await registry.pushBlob(ByteBuffer(string: layer), to: repository)
                descriptors.append(Manifests.descriptor(Manifests.layerType(for: MediaType.ociManifest), digest, layer.utf8.count))
            }
            let manifest = Manifests.image(
                mediaType: MediaType.ociManifest,
                config: Manifests.descriptor(Manifests.configType(for: MediaType.ociManifest), configDigest, config.utf8.count),
                layers: descriptors, extra: extra
            )
            let digest = DigestHasher.digest(of: manifest)
            let response = try await registry.putManifest(
                manifest, to: repository, reference: reference ?? digest.description, mediaType: MediaType.ociManifest
            )
            if response.status == .created { return (digest, manifest.readableBytes) }
            #expect(Registry.errorCode(response) == "MANIFEST_BLOB_UNKNOWN", "\(String(buffer: response.body))")
        }
        return nil
    }
}
