import Runtime
import Testing

/// Durations from the environment (`GC_GRACE_PERIOD`): units, bounds, and values that would
/// overflow when multiplied.
@Suite struct EnvironmentReaderTests {
    func duration(_ value: String?) throws -> Duration {
        try EnvironmentReader(value.map { ["X": $0] } ?? [:]).duration("X", default: .seconds(86_400), maximum: 365 * 86_400)
    }

    @Test func unitsAndDefault() throws {
        #expect(try self.duration(nil) == .seconds(86_400))
        #expect(try self.duration("90") == .seconds(90))
        #expect(try self.duration("90s") == .seconds(90))
        #expect(try self.duration("30m") == .seconds(1800))
        #expect(try self.duration("24h") == .seconds(86_400))
        #expect(try self.duration("7d") == .seconds(604_800))
        #expect(try self.duration("0") == .zero)
    }

    @Test func badValuesNameTheVariable() {
        for bad in ["-1", "1w", "h", "1.5h", "366d", "9223372036854775807d", "99999999999999999999"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try self.duration(bad) }
        }
    }
}
