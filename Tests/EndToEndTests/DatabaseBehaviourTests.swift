import Contracts
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import Runtime
import Testing
import TestSupport

/// What the metadata database decides under load and failure, through the live server.
@Suite struct DatabaseBehaviourTests {
    /// 20 clients push 20 different manifests to one new tag at once (each on its own connection):
    /// exactly one 201, the others the immutability error, never a 500, and the tag names the winner.
    @Test(arguments: Backend.allCases)
    func concurrentPushesToOneTagHaveOneWinner(_ backend: Backend) async throws {
        try await RegistryHarness.withRegistry(backend, client: .ahc()) { registry in
            let config = try await registry.pushBlob(ByteBuffer(string: "{}"), to: "team/app")
            var manifests: [ByteBuffer] = []
            for index in 0..<20 {
                let layer = try await registry.pushBlob(ByteBuffer(string: "layer \(index)"), to: "team/app")
                manifests.append(Manifests.image(
                    mediaType: MediaType.ociManifest,
                    config: Manifests.descriptor("application/vnd.oci.image.config.v1+json", config, 2),
                    layers: [Manifests.descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer, "layer \(index)".utf8.count)]
                ))
            }
            let statuses = try await withThrowingTaskGroup(of: (Int, HTTPResponse.Status).self) { group in
                for (index, manifest) in manifests.enumerated() {
                    group.addTask {
                        (index, try await registry.putManifest(manifest, to: "team/app", reference: "race", mediaType: MediaType.ociManifest).status)
                    }
                }
                return try await group.reduce(into: [Int: HTTPResponse.Status]()) { $0[$1.0] = $1.1 }
            }
            let winners = statuses.filter { $0.value == .created }.map(\.key)
            #expect(winners.count == 1)
            #expect(statuses.values.filter { $0 == .conflict }.count == 19)
            let winner = try #require(winners.first)
            #expect(try await registry.request(.get, "/v2/team/app/manifests/race").body == manifests[winner])
        }
    }

    /// The same blob pushed concurrently into several repositories (each push on its own
    /// connection) is stored once and linked to each.
    @Test(arguments: Backend.allCases)
    func concurrentPushesOfOneBlobStoreItOnce(_ backend: Backend) async throws {
        try await RegistryHarness.withRegistry(backend, client: .ahc()) { registry in
            let bytes = ByteBuffer(repeating: 42, count: 100_000)
            let digests = try await withThrowingTaskGroup(of: Digest.self) { group in
                for index in 0..<8 {
                    group.addTask { try await registry.pushBlob(bytes, to: "team/repo\(index)") }
                }
                return try await group.reduce(into: Set<Digest>()) { $0.insert($1) }
            }
            let digest = try #require(digests.first)
            #expect(digests.count == 1)
            for index in 0..<8 {
                #expect(try await registry.request(.head, "/v2/team/repo\(index)/blobs/\(digest)").status == .ok)
            }
            let stored = registry.directory.appendingPathComponent("blobs/sha256/\(digest.hex.prefix(2))")
            // Each upload placed its own copy; metadata kept the first and the others are discarded
            // (after their pushes were answered).
            try await GarbageCollectionTests.eventually("one copy of the digest is left") {
                let files = try FileManager.default.contentsOfDirectory(atPath: stored.path)
                return files.count == 1 && files.allSatisfy { $0.hasPrefix(digest.hex + ".") }
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: registry.directory.appendingPathComponent("uploads").path).isEmpty)
        }
    }

    /// PostgreSQL stops while the registry runs: requests fail with 503 `UNAVAILABLE`, and succeed
    /// again once it is back, without restarting the registry.
    @Test func survivesAPostgreSQLRestart() async throws {
        let cluster = try await PostgresCluster.start()
        try await RegistryHarness.withRegistry(.postgres, cluster: cluster) { registry in
            let image = try await registry.pushImage(to: "team/app", reference: "1.0", layers: ["before"])
            try await cluster.stopServer()
            let down = try await registry.request(.get, "/v2/team/app/manifests/1.0")
            #expect(down.status == .serviceUnavailable)
            #expect(Registry.errorCode(down) == "UNAVAILABLE")
            let push = try await registry.request(.post, "/v2/team/app/blobs/uploads/?digest=\(DigestHasher.digest(of: ByteBuffer(string: "x")))", body: ByteBuffer(string: "x"))
            #expect(push.status == .serviceUnavailable)

            try await cluster.startServer()
            var recovered = false
            for _ in 0..<60 where !recovered {
                let response = try await registry.request(.get, "/v2/team/app/manifests/1.0")
                recovered = response.status == .ok && response.body == image.bytes
                if !recovered { try await Task.sleep(for: .milliseconds(500)) }
            }
            #expect(recovered)
            try await registry.pushImage(to: "team/app", reference: "2.0", layers: ["after"])
        }
    }
}
