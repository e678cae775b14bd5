import Contracts
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import NIOCore
import Runtime
import Testing
import TestSupport

/// Real registry clients against the live server: skopeo (Debian) and oras (PyPI).
/// The test command installs both; a missing client fails these tests rather than skipping them.
@Suite struct ClientTests {
    /// Builds an OCI image layout with one gzip layer (made by tar and gzip) under `directory`.
    static func makeOCILayout(at directory: URL, content: String, files: [String: String] = [:]) async throws {
        let fileManager = FileManager.default
        let work = directory.appendingPathComponent("work")
        let root = work.appendingPathComponent("rootfs")
        try fileManager.createDirectory(at: root, withIntermediateDirectories: true)
        try Data(content.utf8).write(to: root.appendingPathComponent("hello.txt"))
        for (path, text) in files {
            try Data(text.utf8).write(to: root.appendingPathComponent(path))
        }
        try await Command.run(["tar", "--mtime=@0", "--owner=0", "--group=0", "-cf", "layer.tar", "-C", "rootfs", "."], in: work)
        let tar = try Data(contentsOf: work.appendingPathComponent("layer.tar"))
        try await Command.run(["gzip", "-n", "-k", "layer.tar"], in: work)
        let gzip = try Data(contentsOf: work.appendingPathComponent("layer.tar.gz"))

        let layout = directory.appendingPathComponent("layout")
        let blobs = layout.appendingPathComponent("blobs/sha256")
        try fileManager.createDirectory(at: blobs, withIntermediateDirectories: true)
        func store(_ data: Data) throws -> Digest {
            let digest = DigestHasher.digest(of: ByteBuffer(bytes: data))
            try data.write(to: blobs.appendingPathComponent(digest.hex))
            return digest
        }
        let diffID = DigestHasher.digest(of: ByteBuffer(bytes: tar))
        let layer = try store(gzip)
        let config = Data(
            #"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["\#(diffID)"]}}"#.utf8
        )
        let configDigest = try store(config)
        let manifest = Data(
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(config.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#(layer)","size":\#(gzip.count)}]}"#.utf8
        )
        let manifestDigest = try store(manifest)
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: layout.appendingPathComponent("oci-layout"))
        try Data(
            #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(manifestDigest)","size":\#(manifest.count),"annotations":{"org.opencontainers.image.ref.name":"1.0"}}]}"#.utf8
        ).write(to: layout.appendingPathComponent("index.json"))
    }

    static func skopeo(_ arguments: [String]) async throws {
        try await Command.run(["skopeo", "--insecure-policy"] + arguments)
    }

    static func withScratch(_ body: (URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-client-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(directory)
    }

    @Test(arguments: Backend.allCases)
    func skopeoPushesAndPullsAnOCIImage(_ backend: Backend) async throws {
        try await Self.withScratch { scratch in
            try await Self.makeOCILayout(at: scratch, content: "oci image")
            try await RegistryHarness.withRegistry(backend) { registry in
                let target = "docker://\(registry.host)/team/app:1.0"
                let digestFile = scratch.appendingPathComponent("pushed.digest").path
                try await Self.skopeo([
                    "copy", "--dest-tls-verify=false", "--digestfile", digestFile,
                    "oci:\(scratch.appendingPathComponent("layout").path):1.0", target,
                ])
                let pushed = try String(contentsOfFile: digestFile, encoding: .utf8)
                let head = try await registry.request(.head, "/v2/team/app/manifests/1.0")
                #expect(head.headers[.dockerContentDigest] == pushed)

                let out = scratch.appendingPathComponent("pulled")
                try await Self.skopeo(["copy", "--src-tls-verify=false", target, "oci:\(out.path):pulled"])
                let index = try String(contentsOf: out.appendingPathComponent("index.json"), encoding: .utf8)
                #expect(index.contains(pushed))
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func skopeoPushesAndPullsADockerSchema2Image(_ backend: Backend) async throws {
        try await Self.withScratch { scratch in
            try await Self.makeOCILayout(at: scratch, content: "docker image")
            try await RegistryHarness.withRegistry(backend) { registry in
                let target = "docker://\(registry.host)/team/app:1.0"
                let digestFile = scratch.appendingPathComponent("pushed.digest").path
                try await Self.skopeo([
                    "copy", "--format", "v2s2", "--dest-tls-verify=false", "--digestfile", digestFile,
                    "oci:\(scratch.appendingPathComponent("layout").path):1.0", target,
                ])
                let pushed = try String(contentsOfFile: digestFile, encoding: .utf8)
                let get = try await registry.request(.get, "/v2/team/app/manifests/1.0")
                #expect(get.headers[.contentType] == MediaType.dockerManifest)
                #expect(get.headers[.dockerContentDigest] == pushed)

                let out = scratch.appendingPathComponent("pulled")
                try await Self.skopeo(["copy", "--src-tls-verify=false", target, "dir:\(out.path)"])
                let manifest = try Data(contentsOf: out.appendingPathComponent("manifest.json"))
                #expect(DigestHasher.digest(of: ByteBuffer(bytes: manifest)).description == pushed)

                // Pushing a different image to the immutable tag fails and changes nothing.
                try await Self.makeOCILayout(at: scratch.appendingPathComponent("other"), content: "another image")
                await #expect(throws: Command.Failure.self) {
                    try await Self.skopeo([
                        "copy", "--dest-tls-verify=false",
                        "oci:\(scratch.appendingPathComponent("other/layout").path):1.0", target,
                    ])
                }
                let after = try await registry.request(.head, "/v2/team/app/manifests/1.0")
                #expect(after.headers[.dockerContentDigest] == pushed)
            }
        }
    }

    static let orasScript = """
        import sys, oras.client
        host, target, path, out, chunked = sys.argv[1:6]
        client = oras.client.OrasClient(hostname=host, insecure=True)
        client.push(files=[path], target=target, disable_path_validation=True, do_chunked=chunked == "1", chunk_size=1000)
        files = client.pull(target=target, outdir=out)
        print("\\n".join(files))
        """

    @Test(arguments: Backend.allCases, [false, true])
    func orasPushesAndPullsAnArtifact(_ backend: Backend, chunked: Bool) async throws {
        try await Self.withScratch { scratch in
            let artifact = scratch.appendingPathComponent("artifact.txt")
            let content = String(repeating: "oras artifact payload\n", count: 200)
            try Data(content.utf8).write(to: artifact)
            try await RegistryHarness.withRegistry(backend) { registry in
                let out = scratch.appendingPathComponent("out")
                try await Command.run(
                    ["python3", "-c", Self.orasScript, registry.host, "\(registry.host)/team/artifact:v1",
                     artifact.path, out.path, chunked ? "1" : "0"],
                    in: scratch
                )
                let pulled = try String(contentsOf: out.appendingPathComponent("artifact.txt"), encoding: .utf8)
                #expect(pulled == content)
                let tags = try await registry.request(.get, "/v2/team/artifact/tags/list")
                #expect(String(buffer: tags.body).contains("v1"))
            }
        }
    }

    static let orasAttachScript = """
        import sys, oras.client, oras.oci
        host, target, path, media_type, digest, size = sys.argv[1:7]
        client = oras.client.OrasClient(hostname=host, insecure=True)
        subject = oras.oci.Subject(mediaType=media_type, digest=digest, size=int(size))
        client.push(files=[path], target=target, disable_path_validation=True, subject=subject)
        """

    /// What a new user does: push an image with skopeo, attach an artifact to it with oras, list the
    /// image's referrers, and delete tags (refused for an immutable one).
    @Test(arguments: Backend.allCases)
    func pushAttachListReferrersAndDelete(_ backend: Backend) async throws {
        try await Self.withScratch { scratch in
            try await Self.makeOCILayout(at: scratch, content: "image with an sbom")
            try await Self.makeOCILayout(at: scratch.appendingPathComponent("snapshot"), content: "a snapshot build")
            try await RegistryHarness.withRegistry(backend) { registry in
                let layout = "oci:\(scratch.appendingPathComponent("layout").path):1.0"
                try await Self.skopeo(["copy", "--dest-tls-verify=false", layout, "docker://\(registry.host)/team/app:1.0"])
                let head = try await registry.request(.head, "/v2/team/app/manifests/1.0")
                let digest = try #require(head.headers[.dockerContentDigest])
                let size = try #require(head.headers[.contentLength])
                let mediaType = try #require(head.headers[.contentType])

                let sbom = scratch.appendingPathComponent("sbom.json")
                try Data(#"{"packages":[]}"#.utf8).write(to: sbom)
                try await Command.run(
                    ["python3", "-c", Self.orasAttachScript, registry.host, "\(registry.host)/team/app:sbom",
                     sbom.path, mediaType, digest, size],
                    in: scratch
                )
                let referrers = try await registry.request(.get, "/v2/team/app/referrers/\(digest)")
                let artifact = try await registry.request(.head, "/v2/team/app/manifests/sbom")
                let artifactDigest = try #require(artifact.headers[.dockerContentDigest])
                #expect(String(buffer: referrers.body).contains(artifactDigest))

                // skopeo delete resolves the tag and deletes the manifest by digest.
                await #expect(throws: Command.Failure.self) {
                    try await Self.skopeo(["delete", "--tls-verify=false", "docker://\(registry.host)/team/app:1.0"])
                }
                #expect(try await registry.request(.head, "/v2/team/app/manifests/1.0").status == .ok)
                let snapshot = "oci:\(scratch.appendingPathComponent("snapshot/layout").path):1.0"
                try await Self.skopeo(["copy", "--dest-tls-verify=false", snapshot, "docker://\(registry.host)/team/app:2.0-SNAPSHOT"])
                try await Self.skopeo(["delete", "--tls-verify=false", "docker://\(registry.host)/team/app:2.0-SNAPSHOT"])
                #expect(try await registry.request(.head, "/v2/team/app/manifests/2.0-SNAPSHOT").status == .notFound)
            }
        }
    }
}
