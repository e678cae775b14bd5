import Contracts
import Foundation
import Testing

@Suite struct TimestampsTests {
    @Test func formatsKnownInstants() {
        #expect(Timestamps.iso8601(millis: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamps.iso8601(millis: 951_782_400_123) == "2000-02-29T00:00:00.123Z")
        #expect(Timestamps.iso8601(millis: 1_796_032_293_007) == "2026-11-30T09:51:33.007Z")
        #expect(Timestamps.iso8601(millis: -1) == "1969-12-31T23:59:59.999Z")
    }

    @Test func agreesWithFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let millis = Int64.random(in: 0...4_102_444_800_000, using: &generator)
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
            #expect(Timestamps.iso8601(millis: millis) == expected)
        }
    }
}
