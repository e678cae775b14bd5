/// A content digest `algorithm:hex` as defined by the OCI image spec ("Digests").
///
/// Only the algorithms the registry can verify are accepted (sha256, sha512); the hex part must be
/// lowercase and of the algorithm's exact length, so a digest is also safe to use in a file path.
package struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// A hash algorithm the registry verifies while bytes stream through.
    package enum Algorithm: String, Sendable, Codable, CaseIterable {
        case sha256
        case sha512

        /// Number of lowercase hex characters in an encoded digest of this algorithm.
        package var hexLength: Int {
            switch self {
            case .sha256: 64
            case .sha512: 128
            }
        }
    }

    package let algorithm: Algorithm
    package let hex: String

    /// Creates a digest from an algorithm and its encoded value, or nil when the value is malformed.
    package init?(algorithm: Algorithm, hex: String) {
        guard hex.utf8.count == algorithm.hexLength,
              hex.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { return nil }
        self.algorithm = algorithm
        self.hex = hex
    }

    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`; nil for anything else.
    package init?(_ string: some StringProtocol) {
        guard let colon = string.firstIndex(of: ":"),
              let algorithm = Algorithm(rawValue: String(string[..<colon]))
        else { return nil }
        self.init(algorithm: algorithm, hex: String(string[string.index(after: colon)...]))
    }

    package var description: String { "\(self.algorithm.rawValue):\(self.hex)" }

    package static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.description < rhs.description }
}

extension Digest: ValidatedString {}
