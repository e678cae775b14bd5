/// A check of JSON that parsers could read two ways, run on manifests before they are decoded.
///
/// JSON parsers disagree on a duplicated key (`{"layers": [], "layers": [...]}`: some keep the
/// first, most the last), so what the registry records as referenced could differ from what a
/// client pulls. This scanner walks the document once, compares keys after unescaping (so
/// `"layers"` and `"\u006cayers"` are one key), bounds the nesting depth, and refuses anything
/// that is not one well-formed JSON value (RFC 8259), with numbers a Double holds. It allocates only the keys of the objects
/// open on the path being read.
package enum StrictJSON {
    package struct Failure: Error, Equatable, CustomStringConvertible {
        package var message: String
        package var offset: Int
        package var description: String { "\(self.message) at byte \(self.offset)" }
    }

    /// Deepest nesting of objects and arrays accepted (a manifest needs about 5).
    package static let maximumDepth = 64

    /// Throws when `bytes` are not exactly one JSON value, nest deeper than `maximumDepth`, or hold
    /// an object with a repeated key.
    ///
    /// With `fieldNames` (the fields of the structs the document is decoded into) two more things
    /// are refused, because Go's `encoding/json` — what docker, containerd and skopeo decode with —
    /// matches struct fields case-insensitively (with Unicode folding: `K` U+212A is `k`, `ſ` U+017F
    /// is `s`): two keys of one object that are equal after folding, and a key that folds to one of
    /// `fieldNames` without being spelt exactly so (`"Layers"` next to nothing the registry reads).
    /// Objects under an `annotations` key are maps, which Go matches exactly: only exact repeats
    /// count there.
    package static func check(
        _ bytes: some Collection<UInt8>, maximumDepth: Int = StrictJSON.maximumDepth, fieldNames: Set<String> = []
    ) throws(Failure) {
        var scanner = Scanner(bytes: Array(bytes), maximumDepth: maximumDepth)
        scanner.fieldNames = Dictionary(fieldNames.map { (Self.fold($0), $0) }) { first, _ in first }
        scanner.foldKeys = !fieldNames.isEmpty
        try scanner.skipWhitespace()
        try scanner.value(depth: 0)
        try scanner.skipWhitespace()
        guard scanner.index == scanner.bytes.count else { throw scanner.failure("data after the JSON value") }
    }

    /// Case folding as Go's `encoding/json` matches field names (a superset: upper then lower).
    static func fold(_ key: String) -> String {
        key.uppercased().lowercased()
    }

    private struct Scanner {
        let bytes: [UInt8]
        let maximumDepth: Int
        var index = 0
        /// Folded field name → its exact spelling.
        var fieldNames: [String: String] = [:]
        var foldKeys = false

        func failure(_ message: String) -> Failure { Failure(message: message, offset: self.index) }

        mutating func skipWhitespace() throws(Failure) {
            while self.index < self.bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(self.bytes[self.index]) {
                self.index += 1
            }
        }

        mutating func expect(_ byte: UInt8) throws(Failure) {
            guard self.index < self.bytes.count, self.bytes[self.index] == byte else {
                throw self.failure("expected \(Character(Unicode.Scalar(byte)))")
            }
            self.index += 1
        }

        mutating func value(depth: Int, isMap: Bool = false) throws(Failure) {
            guard self.index < self.bytes.count else { throw self.failure("unexpected end") }
            switch self.bytes[self.index] {
            case UInt8(ascii: "{"):
                guard depth < self.maximumDepth else { throw self.failure("nested deeper than \(self.maximumDepth)") }
                try self.object(depth: depth + 1, isMap: isMap)
            case UInt8(ascii: "["):
                guard depth < self.maximumDepth else { throw self.failure("nested deeper than \(self.maximumDepth)") }
                try self.array(depth: depth + 1)
            case UInt8(ascii: "\""):
                _ = try self.string()
            case UInt8(ascii: "t"): try self.literal("true")
            case UInt8(ascii: "f"): try self.literal("false")
            case UInt8(ascii: "n"): try self.literal("null")
            default: try self.number()
            }
        }

        mutating func object(depth: Int, isMap: Bool = false) throws(Failure) {
            self.index += 1
            var keys = Set<[UInt8]>()
            var folded = Set<String>()
            try self.skipWhitespace()
            if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "}") {
                self.index += 1
                return
            }
            while true {
                try self.skipWhitespace()
                let start = self.index
                guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\"") else {
                    throw self.failure("expected a key")
                }
                let key = try self.string()
                let name = String(decoding: key, as: UTF8.self)
                guard keys.insert(key).inserted else {
                    throw Failure(message: "duplicate key \"\(name)\"", offset: start)
                }
                let fold = StrictJSON.fold(name)
                if self.foldKeys, !isMap {
                    guard folded.insert(fold).inserted else {
                        throw Failure(message: "keys that differ only in case (\"\(name)\")", offset: start)
                    }
                    if let field = self.fieldNames[fold], field != name {
                        throw Failure(message: "key \"\(name)\" is read as \"\(field)\" by some clients; spell it \"\(field)\"", offset: start)
                    }
                }
                try self.skipWhitespace()
                try self.expect(UInt8(ascii: ":"))
                try self.skipWhitespace()
                try self.value(depth: depth, isMap: fold == "annotations")
                try self.skipWhitespace()
                guard self.index < self.bytes.count else { throw self.failure("unexpected end") }
                if self.bytes[self.index] == UInt8(ascii: ",") {
                    self.index += 1
                    continue
                }
                try self.expect(UInt8(ascii: "}"))
                return
            }
        }

        mutating func array(depth: Int) throws(Failure) {
            self.index += 1
            try self.skipWhitespace()
            if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "]") {
                self.index += 1
                return
            }
            while true {
                try self.skipWhitespace()
                try self.value(depth: depth)
                try self.skipWhitespace()
                guard self.index < self.bytes.count else { throw self.failure("unexpected end") }
                if self.bytes[self.index] == UInt8(ascii: ",") {
                    self.index += 1
                    continue
                }
                try self.expect(UInt8(ascii: "]"))
                return
            }
        }

        /// A string at `index` (which is its opening quote); returns its unescaped UTF-8 bytes.
        mutating func string() throws(Failure) -> [UInt8] {
            self.index += 1
            var result: [UInt8] = []
            while true {
                guard self.index < self.bytes.count else { throw self.failure("unterminated string") }
                let byte = self.bytes[self.index]
                self.index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard String(validating: result, as: UTF8.self) != nil else { throw self.failure("invalid UTF-8") }
                    return result
                case UInt8(ascii: "\\"):
                    guard self.index < self.bytes.count else { throw self.failure("unterminated escape") }
                    let escape = self.bytes[self.index]
                    self.index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): result.append(escape)
                    case UInt8(ascii: "b"): result.append(0x08)
                    case UInt8(ascii: "f"): result.append(0x0C)
                    case UInt8(ascii: "n"): result.append(0x0A)
                    case UInt8(ascii: "r"): result.append(0x0D)
                    case UInt8(ascii: "t"): result.append(0x09)
                    case UInt8(ascii: "u"): try self.unicodeEscape(into: &result)
                    default: throw self.failure("invalid escape")
                    }
                case 0x00..<0x20:
                    throw self.failure("control character in a string")
                default:
                    result.append(byte)
                }
            }
        }

        mutating func hexQuad() throws(Failure) -> UInt32 {
            guard self.index + 4 <= self.bytes.count else { throw self.failure("short \\u escape") }
            var value: UInt32 = 0
            for byte in self.bytes[self.index..<(self.index + 4)] {
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw self.failure("invalid \\u escape")
                }
                value = value << 4 | digit
            }
            self.index += 4
            return value
        }

        mutating func unicodeEscape(into result: inout [UInt8]) throws(Failure) {
            var scalar = try self.hexQuad()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low one.
                guard self.index + 2 <= self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\\"),
                      self.bytes[self.index + 1] == UInt8(ascii: "u")
                else { throw self.failure("lone surrogate") }
                self.index += 2
                let low = try self.hexQuad()
                guard (0xDC00..<0xE000).contains(low) else { throw self.failure("lone surrogate") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw self.failure("lone surrogate")
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw self.failure("invalid \\u escape") }
            result.append(contentsOf: Array(String(Character(unicode)).utf8))
        }

        mutating func literal(_ word: StaticString) throws(Failure) {
            let length = word.utf8CodeUnitCount
            guard self.index + length <= self.bytes.count else { throw self.failure("unexpected end") }
            let expected = UnsafeBufferPointer(start: word.utf8Start, count: length)
            guard self.bytes[self.index..<(self.index + length)].elementsEqual(expected) else {
                throw self.failure("invalid literal")
            }
            self.index += length
        }

        mutating func number() throws(Failure) {
            let start = self.index
            func digits(_ scanner: inout Scanner) -> Int {
                let begin = scanner.index
                while scanner.index < scanner.bytes.count, (0x30...0x39).contains(scanner.bytes[scanner.index]) {
                    scanner.index += 1
                }
                return scanner.index - begin
            }
            if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "-") { self.index += 1 }
            let integer = digits(&self)
            guard integer > 0 else { throw Failure(message: "invalid value", offset: start) }
            if integer > 1, self.bytes[self.index - integer] == UInt8(ascii: "0") {
                throw Failure(message: "leading zero", offset: start)
            }
            if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ".") {
                self.index += 1
                guard digits(&self) > 0 else { throw self.failure("invalid number") }
            }
            if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "e") || self.bytes[self.index] == UInt8(ascii: "E") {
                self.index += 1
                if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "+") || self.bytes[self.index] == UInt8(ascii: "-") {
                    self.index += 1
                }
                guard digits(&self) > 0 else { throw self.failure("invalid number") }
            }
            // RFC 8259 §6 lets parsers limit range; Foundation's refuses what a Double cannot hold,
            // so a number out of that range would be read one way here and another there.
            let literal = String(decoding: self.bytes[start..<self.index], as: UTF8.self)
            guard literal.utf8.count <= 400, let value = Double(literal), value.isFinite else {
                throw Failure(message: "number out of range", offset: start)
            }
        }
    }
}
