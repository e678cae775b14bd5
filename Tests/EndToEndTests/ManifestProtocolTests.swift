import Contracts
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import Runtime
import Testing

/// Manifest push and pull, validation, and listings, against the live server.
@Suite struct ManifestProtocolTests {
    @Test(arguments: [MediaType.ociManifest, MediaType.dockerManifest])
    func imageManifestRoundTripsByteForByte(_ mediaType: String) async throws {
        try await RegistryHarness.withRegistry { registry in
            let pushed = try await registry.pushImage(to: "team/app", reference: "1.0", layers: ["layer one"], mediaType: mediaType)
            #expect(pushed.response.headers[.dockerContentDigest] == pushed.digest.description)
            #expect(pushed.response.headers[.location] == "/v2/team/app/manifests/\(pushed.digest)")
            for reference in ["1.0", pushed.digest.description] {
                let get = try await registry.request(.get, "/v2/team/app/manifests/\(reference)", headers: [.accept: mediaType])
                #expect(get.status == .ok)
                #expect(get.body == pushed.bytes)
                #expect(get.headers[.contentType] == mediaType)
                #expect(get.headers[.dockerContentDigest] == pushed.digest.description)
                let head = try await registry.request(.head, "/v2/team/app/manifests/\(reference)")
                #expect(head.status == .ok)
                #expect(head.headers[.contentLength] == String(pushed.bytes.readableBytes))
                #expect(head.headers[.dockerContentDigest] == pushed.digest.description)
            }
            let other = mediaType == MediaType.ociManifest ? MediaType.dockerManifest : MediaType.ociManifest
            let refused = try await registry.request(.get, "/v2/team/app/manifests/1.0", headers: [.accept: other])
            #expect(refused.status == .notFound)
            #expect(Registry.errorCode(refused) == "MANIFEST_UNKNOWN")
            let cached = try await registry.request(
                .get, "/v2/team/app/manifests/1.0", headers: [.ifNoneMatch: "\"\(pushed.digest)\""]
            )
            #expect(cached.status == .notModified)
        }
    }

    @Test(arguments: [
        (MediaType.ociIndex, MediaType.ociManifest), (MediaType.dockerManifestList, MediaType.dockerManifest),
    ])
    func indexesNeedTheirChildren(_ indexType: String, _ childType: String) async throws {
        try await RegistryHarness.withRegistry { registry in
            let child = try await registry.pushImage(to: "team/app", reference: "child", layers: ["l"], mediaType: childType)
            let index = Manifests.index(
                mediaType: indexType,
                manifests: [Manifests.descriptor(childType, child.digest, child.bytes.readableBytes,
                                                 extra: #","platform":{"architecture":"amd64","os":"linux"}"#)]
            )
            let put = try await registry.putManifest(index, to: "team/app", reference: "multi", mediaType: indexType)
            #expect(put.status == .created)
            #expect(try await registry.request(.get, "/v2/team/app/manifests/multi").body == index)
            // The same index in a repository without the child is refused.
            let elsewhere = try await registry.putManifest(index, to: "team/other", reference: "multi", mediaType: indexType)
            #expect(elsewhere.status == .badRequest)
            #expect(Registry.errorCode(elsewhere) == "MANIFEST_BLOB_UNKNOWN")
        }
    }

    @Test func manifestWithAMissingBlobIsRefused() async throws {
        try await RegistryHarness.withRegistry { registry in
            let config = try await registry.pushBlob(ByteBuffer(string: "{}"), to: "team/app")
            let missing = DigestHasher.digest(of: ByteBuffer(string: "never pushed"))
            let manifest = Manifests.image(
                mediaType: MediaType.ociManifest,
                config: Manifests.descriptor("application/vnd.oci.image.config.v1+json", config, 2),
                layers: [Manifests.descriptor("application/vnd.oci.image.layer.v1.tar+gzip", missing, 12)]
            )
            let put = try await registry.putManifest(manifest, to: "team/app", reference: "1.0", mediaType: MediaType.ociManifest)
            #expect(put.status == .badRequest)
            #expect(Registry.errorCode(put) == "MANIFEST_BLOB_UNKNOWN")
            #expect(try await registry.request(.get, "/v2/team/app/manifests/1.0").status == .notFound)
        }
    }

    @Test func invalidManifestJSONIsManifestInvalid() async throws {
        try await RegistryHarness.withRegistry { registry in
            for body in ["{not json", #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#, "[]"] {
                let put = try await registry.putManifest(
                    ByteBuffer(string: body), to: "team/app", reference: "1.0", mediaType: MediaType.ociManifest
                )
                #expect(put.status == .badRequest, "\(body)")
                #expect(Registry.errorCode(put) == "MANIFEST_INVALID", "\(body)")
            }
        }
    }

    @Test func digestReferenceMustMatchTheBytes() async throws {
        try await RegistryHarness.withRegistry { registry in
            let image = try await registry.pushImage(to: "team/app", reference: "1.0", layers: ["x"])
            let wrong = DigestHasher.digest(of: ByteBuffer(string: "something else"))
            let put = try await registry.putManifest(image.bytes, to: "team/app", reference: wrong.description, mediaType: MediaType.ociManifest)
            #expect(put.status == .badRequest)
            #expect(Registry.errorCode(put) == "DIGEST_INVALID")
        }
    }

    @Test func manifestOver4MiBIs413() async throws {
        try await RegistryHarness.withRegistry { registry in
            let config = try await registry.pushBlob(ByteBuffer(string: "{}"), to: "team/app")
            let padding = String(repeating: "a", count: 4 * 1024 * 1024)
            let big = Manifests.image(
                mediaType: MediaType.ociManifest,
                config: Manifests.descriptor("application/vnd.oci.image.config.v1+json", config, 2), layers: [],
                extra: #","annotations":{"padding":"\#(padding)"}"#
            )
            let put = try await registry.putManifest(big, to: "team/app", reference: "big", mediaType: MediaType.ociManifest)
            #expect(put.status == .contentTooLarge)
            #expect(Registry.errorCode(put) == "SIZE_INVALID")
            // Just under the limit is fine.
            let fits = Manifests.image(
                mediaType: MediaType.ociManifest,
                config: Manifests.descriptor("application/vnd.oci.image.config.v1+json", config, 2), layers: [],
                extra: #","annotations":{"padding":"\#(padding.dropFirst(1000))"}"#
            )
            let ok = try await registry.putManifest(fits, to: "team/app", reference: "fits", mediaType: MediaType.ociManifest)
            #expect(ok.status == .created)
        }
    }

    @Test func invalidNamesAndTagsAreRefused() async throws {
        try await RegistryHarness.withRegistry { registry in
            for path in ["/v2/Team/App/manifests/1.0", "/v2/app/tags/list", "/v2/team/-app/blobs/uploads/"] {
                let response = try await registry.request(path.hasSuffix("uploads/") ? .post : .get, path)
                #expect(response.status == .badRequest, "\(path)")
                #expect(Registry.errorCode(response) == "NAME_INVALID", "\(path)")
                #expect(response.headers[.dockerDistributionAPIVersion] == "registry/2.0")
            }
            let image = try await registry.pushImage(to: "team/app", reference: "ok", layers: ["x"])
            for tag in [".hidden", "-dash", String(repeating: "t", count: 129)] {
                let put = try await registry.putManifest(image.bytes, to: "team/app", reference: tag, mediaType: MediaType.ociManifest)
                #expect(put.status == .badRequest, "\(tag)")
                #expect(Registry.errorCode(put) == "MANIFEST_INVALID", "\(tag)")
            }
        }
    }

    @Test func unknownManifestIs404() async throws {
        try await RegistryHarness.withRegistry { registry in
            let response = try await registry.request(.get, "/v2/team/app/manifests/nope")
            #expect(response.status == .notFound)
            #expect(Registry.errorCode(response) == "MANIFEST_UNKNOWN")
        }
    }

    @Test func severalTagsInOnePutByDigest() async throws {
        try await RegistryHarness.withRegistry { registry in
            let image = try await registry.pushImage(to: "team/app", reference: "first", layers: ["x"])
            let put = try await registry.request(
                .put, "/v2/team/app/manifests/\(image.digest)?tag=a&tag=b",
                headers: [.contentType: MediaType.ociManifest], body: image.bytes
            )
            #expect(put.status == .created)
            #expect(put.headers[values: .ociTag] == ["a", "b"])
            let tags = try await registry.request(.get, "/v2/team/app/tags/list")
            #expect(String(buffer: tags.body) == #"{"name":"team/app","tags":["a","b","first"]}"#)
        }
    }

    @Test func tagsAndCatalogArePaginated() async throws {
        try await RegistryHarness.withRegistry { registry in
            for tag in ["c", "a", "b"] {
                try await registry.pushImage(to: "team/app", reference: tag, layers: ["layer " + tag])
            }
            try await registry.pushBlob(ByteBuffer(string: "x"), to: "team/zeta")
            let page = try await registry.request(.get, "/v2/team/app/tags/list?n=2")
            #expect(String(buffer: page.body) == #"{"name":"team/app","tags":["a","b"]}"#)
            #expect(page.headers[.link] == #"</v2/team/app/tags/list?n=2&last=b>; rel="next""#)
            let rest = try await registry.request(.get, "/v2/team/app/tags/list?n=2&last=b")
            #expect(String(buffer: rest.body) == #"{"name":"team/app","tags":["c"]}"#)
            #expect(rest.headers[.link] == nil)
            let none = try await registry.request(.get, "/v2/team/app/tags/list?n=0")
            #expect(String(buffer: none.body) == #"{"name":"team/app","tags":[]}"#)
            let unknown = try await registry.request(.get, "/v2/no/such/tags/list")
            #expect(Registry.errorCode(unknown) == "NAME_UNKNOWN")
            let catalog = try await registry.request(.get, "/v2/_catalog?n=1")
            #expect(String(buffer: catalog.body) == #"{"repositories":["team/app"]}"#)
            #expect(catalog.headers[.link] == #"</v2/_catalog?n=1&last=team/app>; rel="next""#)
            let all = try await registry.request(.get, "/v2/_catalog")
            #expect(String(buffer: all.body) == #"{"repositories":["team/app","team/zeta"]}"#)
        }
    }

    @Test func subjectIsAnsweredAndMayBeMissing() async throws {
        try await RegistryHarness.withRegistry { registry in
            let config = try await registry.pushBlob(ByteBuffer(string: "{}"), to: "team/app")
            let absent = DigestHasher.digest(of: ByteBuffer(string: "subject not pushed yet"))
            let artifact = Manifests.image(
                mediaType: MediaType.ociManifest,
                config: Manifests.descriptor(MediaType.ociEmpty, config, 2), layers: [],
                extra: #","artifactType":"application/vnd.example.sbom","subject":\#(Manifests.descriptor(MediaType.ociManifest, absent, 100))"#
            )
            let put = try await registry.putManifest(artifact, to: "team/app", reference: "sbom", mediaType: MediaType.ociManifest)
            #expect(put.status == .created)
            #expect(put.headers[.ociSubject] == absent.description)
        }
    }

    @Test func errorsCarryTheAPIVersionAndJSON() async throws {
        try await RegistryHarness.withRegistry { registry in
            let response = try await registry.request(.delete, "/v2/team/app/tags/list")
            #expect(response.status == .methodNotAllowed)
            #expect(Registry.errorCode(response) == "UNSUPPORTED")
            #expect(response.headers[.dockerDistributionAPIVersion] == "registry/2.0")
        }
    }
}
