import Contracts
import Testing

@Suite struct ManifestDocumentTests {
    static let config = "sha256:" + String(repeating: "c", count: 64)
    static let layer = "sha256:" + String(repeating: "1", count: 64)
    static let foreign = "sha256:" + String(repeating: "f", count: 64)
    static let subject = "sha256:" + String(repeating: "5", count: 64)

    static let image = """
        {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
         "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config)","size":2},
         "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(layer)","size":3},
                   {"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar","digest":"\(foreign)","size":3}],
         "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(subject)","size":9},
         "custom":{"anything":[1,2,3]}}
        """

    @Test func readsReferencesOfAnImageManifest() throws {
        let document = try ManifestDocument.parse(Array(Self.image.utf8), contentType: MediaType.ociManifest)
        #expect(document.mediaType == MediaType.ociManifest)
        #expect(document.blobs.map(\.description) == [Self.config, Self.layer])
        #expect(document.subject?.description == Self.subject)
        #expect(document.artifactType == "application/vnd.oci.image.config.v1+json")
    }

    @Test func indexListsManifests() throws {
        let index = """
            {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
             "manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"\(Self.layer)","size":1}]}
            """
        let document = try ManifestDocument.parse(Array(index.utf8), contentType: nil)
        #expect(document.mediaType == MediaType.dockerManifestList)
        #expect(document.manifests.map(\.description) == [Self.layer])
        #expect(document.blobs.isEmpty)
    }

    @Test(arguments: [
        ("not json", MediaType.ociManifest),
        (#"{"schemaVersion":1,"config":{"mediaType":"a","digest":"\#(config)","size":1},"layers":[]}"#, MediaType.ociManifest),
        (#"{"schemaVersion":2,"layers":[]}"#, MediaType.ociManifest),
        (#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:bad","size":1},"layers":[]}"#, MediaType.ociManifest),
        (#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#, MediaType.ociManifest),
        (#"{"schemaVersion":2}"#, MediaType.ociIndex),
        (#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#, MediaType.dockerSchema1Signed),
        (#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"\#(config)","size":1},"layers":[]}"#, "text/plain"),
    ])
    func rejectsInvalidManifests(_ body: String, _ contentType: String) {
        #expect(throws: RegistryError.self) {
            try ManifestDocument.parse(Array(body.utf8), contentType: contentType)
        }
        do {
            _ = try ManifestDocument.parse(Array(body.utf8), contentType: contentType)
        } catch {
            #expect(error.code == .manifestInvalid)
        }
    }

    @Test func contentTypeParametersAreIgnored() throws {
        let document = try ManifestDocument.parse(
            Array(Self.image.utf8), contentType: "application/vnd.oci.image.manifest.v1+json; charset=utf-8"
        )
        #expect(document.mediaType == MediaType.ociManifest)
    }
}
