import Foundation
import NIOCore

/// A streaming reader of (ustar, GNU and PAX) tar archives that keeps the content of one file,
/// or (`listing`) the headers of every entry.
package struct TarReader {
    package struct Stop: Error {
        package init() {}
    }

    /// One entry's header, for a listing.
    package struct Entry: Sendable, Equatable {
        package var name: String
        /// The tar type flag: `0` (or NUL) file, `5` directory, `2` symbolic link, `1` hard link…
        package var type: UInt8
        package var mode: Int
        package var size: Int64
        /// Seconds since 1970 (0 when the field is not octal).
        package var modified: Int64
        /// The target of a link.
        package var link: String
    }

    /// Whether to list every entry's header (then no content is kept).
    private var listing = false
    private var listed: [Entry] = []

    static let scmSourceNames: Set<String> = ["scm-source.json"]
    /// Largest file content kept.
    static let maximumContent = 64 * 1024

    let wanted: Set<String>
    private(set) var found: ByteBuffer?
    /// True once the wanted file was read or the archive ended.
    package private(set) var finished = false

    private var pending = ByteBuffer()
    private var state = State.header
    /// A long name from a GNU `L` entry or a PAX `path`, for the next entry.
    private var nextName: String?

    private enum State {
        case header
        case skip(Int64)
        case keep(remaining: Int64, padding: Int64, content: ByteBuffer)
        case longName(remaining: Int64, padding: Int64, content: ByteBuffer, pax: Bool)
    }

    init(wanted: Set<String>) {
        self.wanted = wanted
    }

    /// A reader that lists every entry (`takeEntries()` after each `feed`).
    package init(listing: Void) {
        self.wanted = []
        self.listing = true
    }

    /// The entries listed since the last call.
    package mutating func takeEntries() -> [Entry] {
        defer { self.listed = [] }
        return self.listed
    }

    /// The name relative to the archive root, without `./` or a leading `/`.
    static func normalize(_ name: String) -> String {
        var name = Substring(name)
        while name.hasPrefix("./") || name.hasPrefix("/") { name = name.hasPrefix("./") ? name.dropFirst(2) : name.dropFirst() }
        return String(name)
    }

    package mutating func feed(_ buffer: inout ByteBuffer) throws {
        self.pending.discardReadBytes()
        self.pending.writeBuffer(&buffer)
        while !self.finished {
            switch self.state {
            case .header:
                guard self.pending.readableBytes >= 512, let block = self.pending.readSlice(length: 512) else { return }
                try self.header(block)
            case .skip(let remaining):
                guard remaining > 0 else { self.state = .header; continue }
                let step = Int(min(remaining, Int64(self.pending.readableBytes)))
                guard step > 0 else { return }
                self.pending.moveReaderIndex(forwardBy: step)
                self.state = .skip(remaining - Int64(step))
            case .keep(let remaining, let padding, var content):
                let step = Int(min(remaining, Int64(self.pending.readableBytes)))
                if step > 0, var slice = self.pending.readSlice(length: step) { content.writeBuffer(&slice) }
                if remaining - Int64(step) > 0 {
                    self.state = .keep(remaining: remaining - Int64(step), padding: padding, content: content)
                    return
                }
                self.found = content
                self.finished = true
            case .longName(let remaining, let padding, var content, let pax):
                let step = Int(min(remaining, Int64(self.pending.readableBytes)))
                if step > 0, var slice = self.pending.readSlice(length: step) { content.writeBuffer(&slice) }
                if remaining - Int64(step) > 0 {
                    self.state = .longName(remaining: remaining - Int64(step), padding: padding, content: content, pax: pax)
                    return
                }
                let text = String(buffer: content)
                self.nextName = pax ? Self.paxPath(text) : String(text.prefix { $0 != "\0" })
                self.state = .skip(padding)
            }
        }
    }

    private mutating func header(_ block: ByteBuffer) throws {
        let bytes = Array(block.readableBytesView)
        if bytes.allSatisfy({ $0 == 0 }) {
            self.finished = true
            return
        }
        func field(_ offset: Int, _ length: Int) -> String {
            let slice = bytes[offset..<(offset + length)]
            return String(decoding: slice.prefix { $0 != 0 }, as: UTF8.self)
        }
        let sizeText = field(124, 12).trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
        guard let size = Int64(sizeText.isEmpty ? "0" : sizeText, radix: 8), size >= 0 else {
            throw TarError(description: "not a tar archive (bad size field)")
        }
        let padding = (512 - size % 512) % 512
        let type = bytes[156]
        var name = field(0, 100)
        if field(257, 5) == "ustar" {
            let prefix = field(345, 155)
            if !prefix.isEmpty { name = prefix + "/" + name }
        }
        if let long = self.nextName {
            name = long
            self.nextName = nil
        }
        if self.listing, ![UInt8(ascii: "L"), UInt8(ascii: "K"), UInt8(ascii: "x"), UInt8(ascii: "g")].contains(type) {
            let octal = { (text: String) in Int64(text.trimmingCharacters(in: CharacterSet(charactersIn: " \0")), radix: 8) ?? 0 }
            self.listed.append(Entry(
                name: Self.normalize(name), type: type == 0 ? UInt8(ascii: "0") : type, mode: Int(truncatingIfNeeded: octal(field(100, 8)) & 0o7777),
                size: size, modified: octal(field(136, 12)), link: field(157, 100)
            ))
        }
        switch type {
        case UInt8(ascii: "L"), UInt8(ascii: "x"):
            guard size <= 64 * 1024 else { self.state = .skip(size + padding); return }
            self.state = .longName(remaining: size, padding: padding, content: ByteBuffer(), pax: type == UInt8(ascii: "x"))
        case UInt8(ascii: "0"), 0:
            if self.wanted.contains(Self.normalize(name)), size <= Int64(Self.maximumContent) {
                self.state = .keep(remaining: size, padding: padding, content: ByteBuffer())
            } else {
                self.state = .skip(size + padding)
            }
        default:
            self.state = .skip(size + padding)
        }
    }

    /// The `path` record of a PAX extended header (`<length> path=<value>\n` records).
    static func paxPath(_ text: String) -> String? {
        for record in text.split(separator: "\n") {
            guard let space = record.firstIndex(of: " ") else { continue }
            let pair = record[record.index(after: space)...]
            if pair.hasPrefix("path=") { return String(pair.dropFirst(5)) }
        }
        return nil
    }
}

package struct TarError: Error, CustomStringConvertible {
    package var description: String
}
