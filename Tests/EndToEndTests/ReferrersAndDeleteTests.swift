import Contracts
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import NIOFoundationCompat
import PierOneApp
import Runtime
import Testing

/// Referrers, deletes and the data shapes of OCI.md against the live server.
@Suite struct ReferrersAndDeleteTests {
    static let emptyConfig = "{}"

    /// Pushes an artifact manifest (empty config) with a subject and returns its descriptor values.
    static func pushArtifact(
        _ registry: Registry, subject: Digest, subjectSize: Int, artifactType: String, annotation: String,
        tag: String? = nil, repository: String = "team/app"
    ) async throws -> (digest: Digest, bytes: ByteBuffer) {
        let config = try await registry.pushBlob(ByteBuffer(string: Self.emptyConfig), to: repository)
        let layer = try await registry.pushBlob(ByteBuffer(string: "payload " + annotation), to: repository)
        let manifest = Manifests.image(
            mediaType: MediaType.ociManifest,
            config: Manifests.descriptor(MediaType.ociEmpty, config, 2),
            layers: [Manifests.descriptor("application/vnd.example.payload", layer, ("payload " + annotation).utf8.count)],
            extra: #","artifactType":"\#(artifactType)","subject":\#(Manifests.descriptor(MediaType.ociManifest, subject, subjectSize)),"annotations":{"org.example.note":"\#(annotation)"}"#
        )
        let digest = DigestHasher.digest(of: manifest)
        let response = try await registry.putManifest(
            manifest, to: repository, reference: tag ?? digest.description, mediaType: MediaType.ociManifest
        )
        #expect(response.status == .created, "\(String(buffer: response.body))")
        #expect(response.headers[.ociSubject] == subject.description)
        return (digest, manifest)
    }

    struct ReferrersIndex: Decodable {
        var schemaVersion: Int
        var mediaType: String
        var manifests: [Descriptor]
    }

    static func referrers(_ registry: Registry, _ subject: Digest, query: String = "") async throws
        -> (index: ReferrersIndex, response: TestResponse)
    {
        let response = try await registry.request(.get, "/v2/team/app/referrers/\(subject)\(query)")
        #expect(response.status == .ok)
        #expect(response.headers[.contentType] == MediaType.ociIndex)
        return (try JSONDecoder().decode(ReferrersIndex.self, from: Data(buffer: response.body)), response)
    }

    @Test func referrersListArtifactsWithTypeAndAnnotations() async throws {
        try await RegistryHarness.withRegistry { registry in
            let image = try await registry.pushImage(to: "team/app", reference: "1.0", layers: ["base"])
            let sbom = try await Self.pushArtifact(
                registry, subject: image.digest, subjectSize: image.bytes.readableBytes,
                artifactType: "application/vnd.example.sbom", annotation: "sbom"
            )
            let signature = try await Self.pushArtifact(
                registry, subject: image.digest, subjectSize: image.bytes.readableBytes,
                artifactType: "application/vnd.example.signature", annotation: "sig", tag: "sig"
            )
            let all = try await Self.referrers(registry, image.digest)
            #expect(all.index.schemaVersion == 2)
            #expect(all.index.mediaType == MediaType.ociIndex)
            #expect(Set(all.index.manifests.map(\.digest)) == [sbom.digest, signature.digest])
            let entry = try #require(all.index.manifests.first { $0.digest == sbom.digest })
            #expect(entry.mediaType == MediaType.ociManifest)
            #expect(entry.size == Int64(sbom.bytes.readableBytes))
            #expect(entry.artifactType == "application/vnd.example.sbom")
            #expect(entry.annotations == ["org.example.note": "sbom"])
            #expect(all.response.headers[.ociFiltersApplied] == nil)

            let filtered = try await Self.referrers(registry, image.digest, query: "?artifactType=application/vnd.example.signature")
            #expect(filtered.index.manifests.map(\.digest) == [signature.digest])
            #expect(filtered.response.headers[.ociFiltersApplied] == "artifactType")
        }
    }

    @Test func referrersOfAnUnknownDigestIsAnEmptyIndex() async throws {
        try await RegistryHarness.withRegistry { registry in
            let unknown = DigestHasher.digest(of: ByteBuffer(string: "nothing refers to this"))
            let result = try await Self.referrers(registry, unknown)
            #expect(result.index.manifests.isEmpty)
            let bad = try await registry.request(.get, "/v2/team/app/referrers/sha256:nope")
            #expect(Registry.errorCode(bad) == "DIGEST_INVALID")
        }
    }

    @Test func referrersPageWithLink() async throws {
        try await RegistryHarness.withRegistry { registry in
            let subject = DigestHasher.digest(of: ByteBuffer(string: "a subject pushed later"))
            var pushed: [Digest] = []
            for index in 0..<3 {
                pushed.append(try await Self.pushArtifact(
                    registry, subject: subject, subjectSize: 10, artifactType: "application/vnd.example.t",
                    annotation: "n\(index)"
                ).digest)
            }
            let first = try await Self.referrers(registry, subject, query: "?n=2")
            #expect(first.index.manifests.count == 2)
            let link = try #require(first.response.headers[.link])
            #expect(link.hasSuffix(#">; rel="next""#))
            let next = String(link.dropFirst().prefix { $0 != ">" })
            let second = try await registry.request(.get, next)
            let rest = try JSONDecoder().decode(ReferrersIndex.self, from: Data(buffer: second.body))
            #expect(Set(first.index.manifests.map(\.digest) + rest.manifests.map(\.digest)) == Set(pushed))
            #expect(second.headers[.link] == nil)
        }
    }

    @Test func indexWithASubjectIsAReferrer() async throws {
        try await RegistryHarness.withRegistry { registry in
            let image = try await registry.pushImage(to: "team/app", reference: "1.0", layers: ["base"])
            let index = ByteBuffer(
                string: #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","artifactType":"application/vnd.example.list","manifests":[],"subject":\#(Manifests.descriptor(MediaType.ociManifest, image.digest, image.bytes.readableBytes))}"#
            )
            let digest = DigestHasher.digest(of: index)
            let put = try await registry.putManifest(index, to: "team/app", reference: digest.description, mediaType: MediaType.ociIndex)
            #expect(put.status == .created)
            #expect(put.headers[.ociSubject] == image.digest.description)
            let listed = try await Self.referrers(registry, image.digest)
            #expect(listed.index.manifests.first?.artifactType == "application/vnd.example.list")
            #expect(listed.index.manifests.first?.mediaType == MediaType.ociIndex)
        }
    }

    @Test func deleteTagLeavesTheManifest() async throws {
        try await RegistryHarness.withRegistry(configure: { $0.tagPolicy = TagPolicy(mutableTags: [Glob("*")]) }) { registry in
            let image = try await registry.pushImage(to: "team/app", reference: "1.0", layers: ["x"])
            let delete = try await registry.request(.delete, "/v2/team/app/manifests/1.0")
            #expect(delete.status == .accepted)
            #expect(try await registry.request(.head, "/v2/team/app/manifests/1.0").status == .notFound)
            #expect(try await registry.request(.head, "/v2/team/app/manifests/\(image.digest)").status == .ok)
            let again = try await registry.request(.delete, "/v2/team/app/manifests/1.0")
            #expect(Registry.errorCode(again) == "MANIFEST_UNKNOWN")
        }
    }

    @Test func deleteManifestByDigestRemovesItsTags() async throws {
        try await RegistryHarness.withRegistry(configure: { $0.tagPolicy = TagPolicy(mutableTags: [Glob("*")]) }) { registry in
            let image = try await registry.pushImage(to: "team/app", reference: "1.0", layers: ["x"])
            try await registry.request(
                .put, "/v2/team/app/manifests/\(image.digest)?tag=also", headers: [.contentType: MediaType.ociManifest],
                body: image.bytes
            )
            let delete = try await registry.request(.delete, "/v2/team/app/manifests/\(image.digest)")
            #expect(delete.status == .accepted)
            for reference in ["1.0", "also", image.digest.description] {
                #expect(try await registry.request(.get, "/v2/team/app/manifests/\(reference)").status == .notFound)
            }
            let tags = try await registry.request(.get, "/v2/team/app/tags/list")
            #expect(String(buffer: tags.body) == #"{"name":"team/app","tags":[]}"#)
        }
    }

    @Test func immutableTagsCannotBeDeleted() async throws {
        try await RegistryHarness.withRegistry { registry in
            let image = try await registry.pushImage(to: "team/app", reference: "1.0", layers: ["x"])
            let byTag = try await registry.request(.delete, "/v2/team/app/manifests/1.0")
            #expect(byTag.status == .methodNotAllowed)
            #expect(String(buffer: byTag.body).contains("team/app:1.0 is immutable and cannot be deleted"))
            let byDigest = try await registry.request(.delete, "/v2/team/app/manifests/\(image.digest)")
            #expect(byDigest.status == .methodNotAllowed)
            #expect(try await registry.request(.get, "/v2/team/app/manifests/1.0").body == image.bytes)
            // A mutable tag may be deleted.
            try await registry.pushImage(to: "team/app", reference: "2.0-SNAPSHOT", layers: ["y"])
            #expect(try await registry.request(.delete, "/v2/team/app/manifests/2.0-SNAPSHOT").status == .accepted)
            // The latest alias is no tag to delete.
            #expect(try await registry.request(.delete, "/v2/team/app/manifests/latest").status == .methodNotAllowed)
        }
    }

    @Test func contentInUseIsNotDeleted() async throws {
        try await RegistryHarness.withRegistry(configure: { $0.tagPolicy = TagPolicy(mutableTags: [Glob("*")]) }) { registry in
            let child = try await registry.pushImage(to: "team/app", reference: "child", layers: ["layer"])
            let index = Manifests.index(
                mediaType: MediaType.ociIndex,
                manifests: [Manifests.descriptor(MediaType.ociManifest, child.digest, child.bytes.readableBytes)]
            )
            let indexDigest = DigestHasher.digest(of: index)
            #expect(try await registry.putManifest(index, to: "team/app", reference: "multi", mediaType: MediaType.ociIndex).status == .created)
            let childDelete = try await registry.request(.delete, "/v2/team/app/manifests/\(child.digest)")
            #expect(childDelete.status == .conflict)
            #expect(Registry.errorCode(childDelete) == "DENIED")
            let layer = DigestHasher.digest(of: ByteBuffer(string: "layer"))
            #expect(try await registry.request(.delete, "/v2/team/app/blobs/\(layer)").status == .conflict)
            // Top-down works: index, then child, then its blobs.
            #expect(try await registry.request(.delete, "/v2/team/app/manifests/\(indexDigest)").status == .accepted)
            #expect(try await registry.request(.delete, "/v2/team/app/manifests/\(child.digest)").status == .accepted)
            #expect(try await registry.request(.delete, "/v2/team/app/blobs/\(layer)").status == .accepted)
            #expect(try await registry.request(.head, "/v2/team/app/blobs/\(layer)").status == .notFound)
            #expect(Registry.errorCode(try await registry.request(.delete, "/v2/team/app/blobs/\(layer)")) == "BLOB_UNKNOWN")
        }
    }

    @Test func deletingABlobInOneRepositoryKeepsItInAnother() async throws {
        try await RegistryHarness.withRegistry { registry in
            let digest = try await registry.pushBlob(ByteBuffer(string: "shared bytes"), to: "team/one")
            try await registry.pushBlob(ByteBuffer(string: "shared bytes"), to: "team/two")
            #expect(try await registry.request(.delete, "/v2/team/one/blobs/\(digest)").status == .accepted)
            #expect(try await registry.request(.get, "/v2/team/two/blobs/\(digest)").body == ByteBuffer(string: "shared bytes"))
        }
    }

    @Test func mountWithoutFromFindsAnyReadableBlob() async throws {
        try await RegistryHarness.withRegistry { registry in
            let digest = try await registry.pushBlob(ByteBuffer(string: "anonymous mount"), to: "team/source")
            let mount = try await registry.request(.post, "/v2/team/target/blobs/uploads/?mount=\(digest)")
            #expect(mount.status == .created)
            #expect(mount.headers[.dockerContentDigest] == digest.description)
            #expect(try await registry.request(.get, "/v2/team/target/blobs/\(digest)").body == ByteBuffer(string: "anonymous mount"))
            let unknown = DigestHasher.digest(of: ByteBuffer(string: "never pushed"))
            #expect(try await registry.request(.post, "/v2/team/target/blobs/uploads/?mount=\(unknown)").status == .accepted)
        }
    }
}
