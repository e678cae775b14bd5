/// Durations written as seconds or with a unit: `90s`, `30m`, `24h`, `7d`.
package enum DurationText {
    /// The seconds `text` names, nil when it is no duration or above `maximum` seconds.
    package static func seconds(_ text: String, maximum: Int64) -> Int64? {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var number = Substring(text)
        var unit: Int64 = 1
        if let last = text.last, let factor = units[last] {
            number = number.dropLast()
            unit = factor
        }
        // Range-checked before multiplying: a huge value must not overflow.
        guard number.allSatisfy(\.isASCII), let value = Int64(number), value >= 0, value <= maximum / unit else { return nil }
        return value * unit
    }
}
