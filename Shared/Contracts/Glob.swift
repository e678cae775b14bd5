/// A shell-style pattern for tags and repository names.
///
/// `*` matches any run of characters except `/`, `**` matches any run including `/`, `?` matches
/// one character other than `/`; everything else matches itself.
package struct Glob: Sendable, Equatable, CustomStringConvertible, Codable {
    package let pattern: String
    private let tokens: [Token]

    private enum Token: Sendable, Equatable {
        case literal(UInt8)
        case one
        case segment
        case any
    }

    package init(_ pattern: String) {
        self.pattern = pattern
        var tokens: [Token] = []
        let bytes = Array(pattern.utf8)
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "*"):
                if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "*") {
                    tokens.append(.any)
                    index += 2
                } else {
                    tokens.append(.segment)
                    index += 1
                }
            case UInt8(ascii: "?"):
                tokens.append(.one)
                index += 1
            default:
                tokens.append(.literal(bytes[index]))
                index += 1
            }
        }
        self.tokens = tokens
    }

    package var description: String { self.pattern }

    /// Whether the whole of `string` matches the pattern.
    package func matches(_ string: some StringProtocol) -> Bool {
        let text = Array(string.utf8)
        // Dynamic programming over (token, text position): no exponential backtracking.
        var reachable = [Bool](repeating: false, count: text.count + 1)
        reachable[0] = true
        for token in self.tokens {
            var next = [Bool](repeating: false, count: text.count + 1)
            for position in 0...text.count where reachable[position] {
                switch token {
                case .literal(let byte):
                    if position < text.count, text[position] == byte { next[position + 1] = true }
                case .one:
                    if position < text.count, text[position] != UInt8(ascii: "/") { next[position + 1] = true }
                case .segment, .any:
                    next[position] = true
                    var end = position
                    while end < text.count, token == .any || text[end] != UInt8(ascii: "/") {
                        end += 1
                        next[end] = true
                    }
                }
            }
            reachable = next
        }
        return reachable[text.count]
    }

    package init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.pattern)
    }
}
