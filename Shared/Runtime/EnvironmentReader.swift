import Contracts
import Foundation

/// Typed, validated reads of environment variables; every failure names the variable.
package struct EnvironmentReader: Sendable {
    private let values: [String: String]

    package init(_ values: [String: String] = ProcessInfo.processInfo.environment) {
        self.values = values
    }

    /// The trimmed value, nil when unset or blank.
    package func string(_ name: String) -> String? {
        guard let value = self.values[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    package func string(_ name: String, default fallback: String) -> String {
        self.string(name) ?? fallback
    }

    package func integer(_ name: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw = self.string(name) else { return fallback }
        guard let value = Int(raw), range.contains(value) else {
            throw ConfigurationError(name, "\"\(raw)\" is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// Seconds, or a number with a unit: `90s`, `30m`, `24h`, `7d`; at most `maximum` seconds.
    package func duration(_ name: String, default fallback: Duration, maximum: Int64) throws -> Duration {
        guard let raw = self.string(name) else { return fallback }
        guard let seconds = DurationText.seconds(raw, maximum: maximum) else {
            throw ConfigurationError(
                name, "\"\(raw)\" is not a duration of at most \(maximum) seconds: seconds, or a number with s, m, h or d (e.g. 24h)"
            )
        }
        return .seconds(seconds)
    }

    package func bool(_ name: String, default fallback: Bool) throws -> Bool {
        guard let raw = self.string(name) else { return fallback }
        switch raw.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigurationError(name, "\"\(raw)\" is not true or false")
        }
    }
}
