/// A tag name: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}` (OCI distribution-spec "Pulling manifests").
package struct Tag: Hashable, Sendable, Comparable, ValidatedString {
    package static let maximumLength = 128

    package let value: String

    package init?(_ string: some StringProtocol) {
        let bytes = Array(string.utf8)
        guard let first = bytes.first, bytes.count <= Self.maximumLength,
              Self.isWordByte(first),
              bytes.allSatisfy({ Self.isWordByte($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") })
        else { return nil }
        self.value = String(string)
    }

    package var description: String { self.value }

    package static func < (lhs: Tag, rhs: Tag) -> Bool { lhs.value < rhs.value }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        (0x61...0x7A).contains(byte) || (0x41...0x5A).contains(byte) || (0x30...0x39).contains(byte)
            || byte == UInt8(ascii: "_")
    }
}

/// What follows `/manifests/` in a URL: a tag or a digest.
package enum Reference: Hashable, Sendable, CustomStringConvertible, Codable {
    case tag(Tag)
    case digest(Digest)

    /// A string containing `:` must be a valid digest; anything else must be a valid tag.
    package init?(_ string: some StringProtocol) {
        if string.contains(":") {
            guard let digest = Digest(string) else { return nil }
            self = .digest(digest)
        } else {
            guard let tag = Tag(string) else { return nil }
            self = .tag(tag)
        }
    }

    package var description: String {
        switch self {
        case .tag(let tag): tag.value
        case .digest(let digest): digest.description
        }
    }
}
