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
