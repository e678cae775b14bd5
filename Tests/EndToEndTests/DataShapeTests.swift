import Contracts
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import Runtime
import Testing

/// Every manifest shape OCI.md lists is accepted, stored byte for byte and served back.
@Suite struct DataShapeTests {
    /// Pushes `bytes` by tag and by digest, then checks both reads return them exactly.
    static func roundTrip(_ registry: Registry, _ bytes: ByteBuffer, mediaType: String, tag: String) async throws {
        let digest = DigestHasher.digest(of: bytes)
        let byDigest = try await registry.putManifest(bytes, to: "team/app", reference: digest.description, mediaType: mediaType)
        #expect(byDigest.status == .created, "\(String(buffer: byDigest.body))")
        let byTag = try await registry.putManifest(bytes, to: "team/app", reference: tag, mediaType: mediaType)
        #expect(byTag.status == .created, "\(String(buffer: byTag.body))")
        for reference in [tag, digest.description] {
            let get = try await registry.request(.get, "/v2/team/app/manifests/\(reference)")
            #expect(get.body == bytes)
            #expect(get.headers[.contentType] == mediaType)
            #expect(get.headers[.dockerContentDigest] == digest.description)
        }
    }

    static func config(_ registry: Registry, _ content: String = "{}") async throws -> String {
        let digest = try await registry.pushBlob(ByteBuffer(string: content), to: "team/app")
        return Manifests.descriptor(MediaType.ociEmpty, digest, content.utf8.count)
    }

    @Test func nestedIndex() async throws {
        try await RegistryHarness.withRegistry { registry in
            let image = try await registry.pushImage(to: "team/app", reference: "image", layers: ["l"])
            let inner = Manifests.index(
                mediaType: MediaType.ociIndex,
                manifests: [Manifests.descriptor(MediaType.ociManifest, image.digest, image.bytes.readableBytes)]
            )
            let innerDigest = DigestHasher.digest(of: inner)
            _ = try await registry.putManifest(inner, to: "team/app", reference: innerDigest.description, mediaType: MediaType.ociIndex)
            let outer = Manifests.index(
                mediaType: MediaType.ociIndex,
                manifests: [Manifests.descriptor(MediaType.ociIndex, innerDigest, inner.readableBytes)]
            )
            try await Self.roundTrip(registry, outer, mediaType: MediaType.ociIndex, tag: "nested")
        }
    }

    @Test func emptyIndex() async throws {
        try await RegistryHarness.withRegistry { registry in
            try await Self.roundTrip(registry, Manifests.index(mediaType: MediaType.ociIndex, manifests: []),
                                     mediaType: MediaType.ociIndex, tag: "empty")
        }
    }

    @Test func artifactWithAndWithoutLayers() async throws {
        try await RegistryHarness.withRegistry { registry in
            let config = try await Self.config(registry)
            let layer = try await registry.pushBlob(ByteBuffer(string: "artifact payload"), to: "team/app")
            let withLayers = Manifests.image(
                mediaType: MediaType.ociManifest, config: config,
                layers: [Manifests.descriptor("application/vnd.example.data", layer, 16)],
                extra: #","artifactType":"application/vnd.example""#
            )
            try await Self.roundTrip(registry, withLayers, mediaType: MediaType.ociManifest, tag: "with-layers")
            let emptyLayers = Manifests.image(
                mediaType: MediaType.ociManifest, config: config, layers: [],
                extra: #","artifactType":"application/vnd.example""#
            )
            try await Self.roundTrip(registry, emptyLayers, mediaType: MediaType.ociManifest, tag: "no-layers")
            let noLayersField = ByteBuffer(
                string: #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example","config":\#(config)}"#
            )
            try await Self.roundTrip(registry, noLayersField, mediaType: MediaType.ociManifest, tag: "no-layers-field")
        }
    }

    @Test func dataFieldsAndCustomFields() async throws {
        try await RegistryHarness.withRegistry { registry in
            let configDigest = try await registry.pushBlob(ByteBuffer(string: "{}"), to: "team/app")
            let config = Manifests.descriptor(
                MediaType.ociEmpty, configDigest, 2, extra: #","data":"e30=","x-custom":{"nested":[1,2]}"#
            )
            let manifest = Manifests.image(
                mediaType: MediaType.ociManifest, config: config, layers: [],
                extra: #","x-unknown-field":"kept exactly","annotations":{"a":"b"}"#
            )
            try await Self.roundTrip(registry, manifest, mediaType: MediaType.ociManifest, tag: "fields")
        }
    }

    @Test func nonDistributableLayersNeedNotBePushed() async throws {
        try await RegistryHarness.withRegistry { registry in
            let config = try await Self.config(registry)
            let foreign = DigestHasher.digest(of: ByteBuffer(string: "lives elsewhere"))
            let manifest = Manifests.image(
                mediaType: MediaType.ociManifest, config: config,
                layers: [Manifests.descriptor(
                    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", foreign, 123_456,
                    extra: #","urls":["https://store.example.com/blobs/sha256/\#(foreign.hex)"]"#
                )]
            )
            try await Self.roundTrip(registry, manifest, mediaType: MediaType.ociManifest, tag: "foreign")
        }
    }

    @Test func sha512ManifestsWithTagParameters() async throws {
        try await RegistryHarness.withRegistry { registry in
            let config = try await Self.config(registry)
            let manifest = Manifests.image(mediaType: MediaType.ociManifest, config: config, layers: [])
            let digest = DigestHasher.digest(of: manifest, algorithm: .sha512)
            let put = try await registry.request(
                .put, "/v2/team/app/manifests/\(digest)?tag=v512", headers: [.contentType: MediaType.ociManifest],
                body: manifest
            )
            #expect(put.status == .created)
            #expect(put.headers[.dockerContentDigest] == digest.description)
            #expect(put.headers[values: .ociTag] == ["v512"])
            let get = try await registry.request(.get, "/v2/team/app/manifests/v512")
            #expect(get.headers[.dockerContentDigest] == digest.description)
            #expect(get.body == manifest)
        }
    }

    @Test func largeManifestJustUnder4MiB() async throws {
        try await RegistryHarness.withRegistry { registry in
            let config = try await Self.config(registry)
            let filler = (0..<390).map { #""large-\#($0)":"\#(String(repeating: "A", count: 10_000))""# }.joined(separator: ",")
            let manifest = Manifests.image(
                mediaType: MediaType.ociManifest, config: config, layers: [], extra: #","annotations":{\#(filler)}"#
            )
            #expect(manifest.readableBytes > 3_900_000)
            try await Self.roundTrip(registry, manifest, mediaType: MediaType.ociManifest, tag: "large")
        }
    }
}
