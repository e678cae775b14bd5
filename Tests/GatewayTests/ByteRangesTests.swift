import Testing

@testable import Gateway

@Suite struct ByteRangesTests {
    // The distribution-spec examples on a 2048-byte blob.
    @Test func rangeSelectionOnA2048ByteBlob() {
        #expect(ByteRanges.select("bytes=500-1499", size: 2048) == .partial(500...1499))
        #expect(ByteRanges.select("bytes=500-", size: 2048) == .partial(500...2047))
        #expect(ByteRanges.select("bytes=-500", size: 2048) == .partial(1548...2047))
        #expect(ByteRanges.select("bytes=2000-5000", size: 2048) == .partial(2000...2047))
        #expect(ByteRanges.select("bytes=500-0", size: 2048) == .unsatisfiable)
        #expect(ByteRanges.select("bytes=5000-10000", size: 2048) == .unsatisfiable)
        #expect(ByteRanges.select(nil, size: 2048) == .whole)
        #expect(ByteRanges.select("items=1-2", size: 2048) == .whole)
    }

    @Test func chunkContentRange() {
        #expect(ByteRanges.parseChunk("0-99") == 0...99)
        #expect(ByteRanges.parseChunk("bytes 100-199/*") == 100...199)
        #expect(ByteRanges.parseChunk("5-4") == nil)
        #expect(ByteRanges.parseChunk("a-b") == nil)
        #expect(ByteRanges.parseChunk("-5") == nil)
    }
}

@Suite struct AcceptTests {
    @Test func acceptFiltersOnlyWhenItNamesManifestTypes() {
        let oci = "application/vnd.oci.image.manifest.v1+json"
        let docker = "application/vnd.docker.distribution.manifest.v2+json"
        #expect(ManifestHandlers.accepts([], oci))
        #expect(ManifestHandlers.accepts(["application/json"], oci))
        #expect(ManifestHandlers.accepts([oci], oci))
        #expect(ManifestHandlers.accepts(["\(docker), \(oci);q=0.9"], oci))
        #expect(ManifestHandlers.accepts([docker, "*/*"], oci))
        #expect(!ManifestHandlers.accepts([docker], oci))
        #expect(!ManifestHandlers.accepts(["application/vnd.oci.image.index.v1+json"], docker))
    }
}
