import AsyncHTTPClient
import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PierOneApp
import Runtime
import Testing
import TestSupport

@testable import Blob

/// The registry with its blobs in S3 (moto, signature checking on), as clients meet it.
@Suite struct S3StorageTests {
    static func settings(_ moto: MotoServer, externalStore: Bool = false) -> S3Settings {
        S3Settings(
            bucket: moto.bucket, prefix: "e2e-\(UUID())", region: "us-east-1", endpoint: moto.endpoint,
            externalStore: externalStore, partSize: 5 << 20, accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey
        )
    }

    static func client(_ moto: MotoServer) -> S3Client {
        let credentials = AWSCredentials(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey)
        return S3Client(endpoint: moto.endpoint, bucket: moto.bucket, region: "us-east-1", http: S3Client.sharedHTTPClient) {
            credentials
        }
    }

    /// Push, delete, wait out the grace period: the deleted image's objects are gone from the
    /// bucket, the kept image's stay and read back.
    @Test(arguments: Backend.allCases)
    func garbageLeavesTheBucket(_ backend: Backend) async throws {
        let moto = try await MotoServer.shared()
        let settings = Self.settings(moto)
        try await RegistryHarness.withRegistry(backend, configure: { $0.s3 = settings; $0.gcGracePeriod = .seconds(3) }) { registry in
            let client = Self.client(moto)
            let kept = try #require(try await GarbageCollectionTests.push(registry, to: "team/app", tag: "1.0", layers: ["kept in s3"]))
            let dropped = try #require(try await GarbageCollectionTests.push(
                registry, to: "team/app", tag: "2.0-SNAPSHOT", config: #"{"s3":"dropped"}"#, layers: ["dropped from s3"]
            ))
            #expect(try await client.listObjects(prefix: settings.prefix + "blobs/").count == 4)
            #expect(try await registry.request(.delete, "/v2/team/app/manifests/\(dropped)").status == .accepted)
            try await GarbageCollectionTests.eventually("the dropped image's objects leave the bucket") {
                try await client.listObjects(prefix: settings.prefix + "blobs/").count == 2
            }
            let manifest = try await registry.request(.get, "/v2/team/app/manifests/1.0")
            #expect(manifest.status == .ok && DigestHasher.digest(of: manifest.body) == kept)
            for content in ["kept in s3", "{}"] {
                let blob = try await registry.request(.get, "/v2/team/app/blobs/\(DigestHasher.digest(of: ByteBuffer(string: content)))")
                #expect(blob.status == .ok && String(buffer: blob.body) == content)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func skopeoPushesAndPullsWithBlobsInS3(_ backend: Backend) async throws {
        let moto = try await MotoServer.shared()
        let settings = Self.settings(moto)
        try await ClientTests.withScratch { scratch in
            try await ClientTests.makeOCILayout(at: scratch, content: "image with its layers in S3")
            try await RegistryHarness.withRegistry(backend, configure: { $0.s3 = settings }) { registry in
                let target = "docker://\(registry.host)/team/app:1.0"
                let digestFile = scratch.appendingPathComponent("pushed.digest").path
                try await ClientTests.skopeo([
                    "copy", "--dest-tls-verify=false", "--digestfile", digestFile,
                    "oci:\(scratch.appendingPathComponent("layout").path):1.0", target,
                ])
                let pushed = try String(contentsOfFile: digestFile, encoding: .utf8)
                let out = scratch.appendingPathComponent("pulled")
                try await ClientTests.skopeo(["copy", "--src-tls-verify=false", target, "oci:\(out.path):pulled"])
                let index = try String(contentsOf: out.appendingPathComponent("index.json"), encoding: .utf8)
                #expect(index.contains(pushed))
                // Config and layer are objects under the prefix; nothing of the sessions is left.
                let client = Self.client(moto)
                #expect(try await client.listObjects(prefix: settings.prefix + "blobs/").count == 2)
                #expect(try await client.listObjects(prefix: settings.prefix + "uploads/").isEmpty)
                #expect(try await client.listMultipartUploads(prefix: settings.prefix).isEmpty)
                // Nothing was written to the data directory but the SQLite file (with PostgreSQL, no
                // directory at all).
                let files = (try? FileManager.default.contentsOfDirectory(atPath: registry.directory.path)) ?? []
                #expect(files.allSatisfy { $0.hasPrefix("metadata.sqlite") })
            }
        }
    }

    /// 200 MiB in one streamed PATCH (curl, chunked transfer encoding, as docker and skopeo send
    /// layers) arrives as a multipart upload; a cancelled upload leaves no multipart upload behind.
    @Test func aLargeLayerInOneStreamedPatchIsAMultipartUploadAndCancelLeavesNothing() async throws {
        let moto = try await MotoServer.shared()
        let settings = Self.settings(moto)
        let client = Self.client(moto)
        try await RegistryHarness.withRegistry(configure: { $0.s3 = settings }) { registry in
            let file = registry.directory.appendingPathComponent("layer.bin")
            let pattern = Data((0..<(1 << 20)).map { UInt8($0 % 251) })
            _ = FileManager.default.createFile(atPath: file.path, contents: nil)
            let handle = try FileHandle(forWritingTo: file)
            for _ in 0..<200 { try handle.write(contentsOf: pattern) }
            try handle.close()
            let digest = "sha256:" + (try await Command.run(["sha256sum", file.path])).prefix(64)

            let start = try await registry.request(.post, "/v2/team/big/blobs/uploads/")
            let location = try #require(start.headers[.location])
            let url = "http://127.0.0.1:\(registry.port)\(location)"
            // `-T -` reads standard input: curl streams it with chunked transfer encoding.
            try await Command.run(["sh", "-c", "curl -sSf -X PATCH -T - '\(url)' < '\(file.path)' -o /dev/null"])
            let put = try await registry.request(.put, "\(location)?digest=\(digest)")
            #expect(put.status == .created)
            let objects = try await client.listObjects(prefix: settings.prefix + "blobs/")
            #expect(objects.count == 1)
            let key = try #require(objects.first?.key)
            let object = try #require(try await client.headObject(key))
            #expect(object.size == 200 << 20)
            #expect(object.etag.hasSuffix("-40\""))
            let range = try await registry.request(.get, "/v2/team/big/blobs/\(digest)", headers: [.range: "bytes=104857590-104857609"])
            #expect(range.status == .partialContent)
            // Across the boundary of parts 20 and 21: the bytes of the pattern at those offsets.
            #expect(range.body == ByteBuffer(bytes: (104_857_590...104_857_609).map { UInt8($0 % (1 << 20) % 251) }))

            // Cancelled after more than one part: the multipart upload is aborted.
            let second = try await registry.request(.post, "/v2/team/big/blobs/uploads/")
            let secondLocation = try #require(second.headers[.location])
            try await Command.run([
                "sh", "-c", "head -c 12000000 '\(file.path)' | curl -sSf -X PATCH -T - 'http://127.0.0.1:\(registry.port)\(secondLocation)' -o /dev/null",
            ])
            #expect(try await client.listMultipartUploads(prefix: settings.prefix).count == 1)
            let cancel = try await registry.request(.delete, secondLocation)
            #expect(cancel.status == .noContent)
            #expect(try await client.listMultipartUploads(prefix: settings.prefix).isEmpty)
            #expect(try await client.listObjects(prefix: settings.prefix + "uploads/").isEmpty)
            #expect(try await client.listObjects(prefix: settings.prefix + "blobs/").count == 1)
        }
    }

    /// One digest uploaded into two repositories (and twice into one) is kept once: S3 stores each
    /// upload at its own key, and the duplicates are deleted once metadata says the digest was
    /// there already (after the push's answer).
    @Test func aDigestUploadedAgainIsStoredOnce() async throws {
        let moto = try await MotoServer.shared()
        let settings = Self.settings(moto)
        let client = Self.client(moto)
        try await RegistryHarness.withRegistry(configure: { $0.s3 = settings }) { registry in
            let layer = ByteBuffer(repeating: 7, count: 100_000)
            let digest = try await registry.pushBlob(layer, to: "team/one")
            try await registry.pushBlob(layer, to: "team/two")
            try await registry.pushBlob(layer, to: "team/two")
            // The duplicates go after their pushes were answered.
            try await GarbageCollectionTests.eventually("one object of the digest is left") {
                try await client.listObjects(prefix: settings.prefix + "blobs/").count == 1
            }
            for repository in ["team/one", "team/two"] {
                let get = try await registry.request(.get, "/v2/\(repository)/blobs/\(digest)")
                #expect(get.status == .ok)
                #expect(get.body == layer)
            }
        }
    }

    /// `STORAGE_S3_EXTERNAL_STORE`: blob GETs answer 307 to a presigned URL, and skopeo follows it.
    /// moto cannot check presigned signatures while its checks are on, so this runs on a moto
    /// whose checks never start; `presignedURLsMatchTheAWSSDK` checks the signature itself.
    @Test func blobGetsRedirectToPresignedURLs() async throws {
        let moto = try await MotoServer.start(checkSignatures: false)
        defer { moto.stop() }
        let settings = Self.settings(moto, externalStore: true)
        try await ClientTests.withScratch { scratch in
            try await ClientTests.makeOCILayout(at: scratch, content: "redirected layer")
            try await RegistryHarness.withRegistry(configure: { $0.s3 = settings }) { registry in
                let target = "docker://\(registry.host)/team/app:1.0"
                try await ClientTests.skopeo([
                    "copy", "--dest-tls-verify=false", "oci:\(scratch.appendingPathComponent("layout").path):1.0", target,
                ])
                let manifest = try await registry.request(.get, "/v2/team/app/manifests/1.0", headers: [.accept: MediaType.ociManifest])
                let layer = try #require(
                    String(buffer: manifest.body).components(separatedBy: "\"digest\":\"").last?.prefix(71)
                )
                let get = try await registry.request(.get, "/v2/team/app/blobs/\(layer)")
                #expect(get.status == .temporaryRedirect)
                let redirect = try #require(get.headers[.location])
                #expect(redirect.hasPrefix(moto.endpoint + "/" + moto.bucket + "/" + settings.prefix + "blobs/"))
                #expect(redirect.contains("X-Amz-Signature="))
                let head = try await registry.request(.head, "/v2/team/app/blobs/\(layer)")
                #expect(head.status == .ok)
                let out = scratch.appendingPathComponent("pulled")
                try await ClientTests.skopeo(["copy", "--src-tls-verify=false", target, "oci:\(out.path):pulled"])
                let blob = try Data(contentsOf: out.appendingPathComponent("blobs/sha256/\(layer.dropFirst(7))"))
                #expect(DigestHasher.digest(of: ByteBuffer(bytes: blob)).description == String(layer))
            }
        }
    }
}
