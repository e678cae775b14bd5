/// A value written as one string that is validated when read, e.g. in JSON: a digest, a
/// repository name, a tag. Decoding an invalid string is a decoding error.
package protocol ValidatedString: Codable, CustomStringConvertible {
    init?(_ string: some StringProtocol)
}

extension ValidatedString {
    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        guard let value = Self(string) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "invalid \(Self.self): \(string)")
        }
        self = value
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }
}
