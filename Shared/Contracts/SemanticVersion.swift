/// `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`, optionally with a leading `v`; a missing minor or
/// patch counts as 0 (`v2`, `1.4`). Ordered by semver precedence (a pre-release is below its
/// release; build metadata is ignored).
package struct SemanticVersion: Sendable, Comparable {
    var numbers: [UInt64]
    var prerelease: [Substring]

    package init?(_ text: String) {
        var rest = Substring(text)
        if rest.first == "v" || rest.first == "V" { rest = rest.dropFirst() }
        if let plus = rest.firstIndex(of: "+") { rest = rest[..<plus] }
        var pre: Substring = ""
        if let dash = rest.firstIndex(of: "-") {
            pre = rest[rest.index(after: dash)...]
            rest = rest[..<dash]
            guard !pre.isEmpty else { return nil }
        }
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count) else { return nil }
        var numbers: [UInt64] = []
        for part in parts {
            // Bounded: a number of 20 digits would not fit.
            guard !part.isEmpty, part.count <= 18, part.allSatisfy(\.isASCII), let value = UInt64(part) else { return nil }
            numbers.append(value)
        }
        while numbers.count < 3 { numbers.append(0) }
        self.numbers = numbers
        self.prerelease = pre.isEmpty ? [] : pre.split(separator: ".", omittingEmptySubsequences: false)
    }

    package static func < (lhs: Self, rhs: Self) -> Bool {
        if lhs.numbers != rhs.numbers { return lhs.numbers.lexicographicallyPrecedes(rhs.numbers) }
        // A release is above its pre-releases.
        if lhs.prerelease.isEmpty || rhs.prerelease.isEmpty { return !lhs.prerelease.isEmpty && rhs.prerelease.isEmpty }
        for (left, right) in zip(lhs.prerelease, rhs.prerelease) where left != right {
            switch (UInt64(left), UInt64(right)) {
            case let (l?, r?): return l < r
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return left < right
            }
        }
        return lhs.prerelease.count < rhs.prerelease.count
    }

    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.numbers == rhs.numbers && lhs.prerelease == rhs.prerelease
    }
}
