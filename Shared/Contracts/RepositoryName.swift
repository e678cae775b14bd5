/// A repository name such as `team/app` or `team/group/app`.
///
/// Validated against the OCI distribution-spec grammar
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
/// Pier One requires at least two components: the first one is the owning team.
package struct RepositoryName: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Longest accepted name; the spec limits host plus name to 255 characters.
    package static let maximumLength = 255

    package let value: String

    /// Validates `string`; nil when it breaks the grammar, has one component only, or is too long.
    package init?(_ string: some StringProtocol) {
        let string = String(string)
        guard !string.isEmpty, string.utf8.count <= Self.maximumLength else { return nil }
        let components = string.split(separator: "/", omittingEmptySubsequences: false)
        guard components.count >= 2, components.allSatisfy(Self.isValidComponent) else { return nil }
        self.value = string
    }

    /// The team that owns the repository: its first path component.
    package var team: String { String(self.value.prefix { $0 != "/" }) }

    /// The artifact name: everything after the team.
    package var artifact: String { String(self.value.drop { $0 != "/" }.dropFirst()) }

    package var description: String { self.value }

    package static func < (lhs: RepositoryName, rhs: RepositoryName) -> Bool { lhs.value < rhs.value }

    /// One component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
    static func isValidComponent(_ component: Substring) -> Bool {
        let bytes = Array(component.utf8)
        guard let first = bytes.first, let last = bytes.last, isAlphanumeric(first), isAlphanumeric(last) else {
            return false
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if isAlphanumeric(byte) {
                index += 1
                continue
            }
            // A separator run: ".", "_", "__" or one or more "-", always followed by an alphanumeric.
            var end = index
            switch byte {
            case UInt8(ascii: "."):
                end = index + 1
            case UInt8(ascii: "_"):
                end = index + 1
                if end < bytes.count, bytes[end] == UInt8(ascii: "_") { end += 1 }
            case UInt8(ascii: "-"):
                while end < bytes.count, bytes[end] == UInt8(ascii: "-") { end += 1 }
            default:
                return false
            }
            guard end < bytes.count, isAlphanumeric(bytes[end]) else { return false }
            index = end
        }
        return true
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
    }
}

extension RepositoryName: ValidatedString {}
