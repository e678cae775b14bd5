import CompressNIO
import Contracts
import Foundation
import Logging
import NIOCore

/// Finds a `scm-source.json` at the root of a pushed image's layers, after the push has been
/// answered: the manifest PUT only enqueues the image, and one background task reads layers
/// (last first, where a Dockerfile's final `COPY scm-source.json /` lands) through gunzip and a
/// tar reader, stopping at the first hit. A source from a trusted pusher's header is never
/// replaced. Bounded: at most `queueLimit` images wait (more are dropped and logged), at most
/// `byteLimit` compressed bytes are read per image, and an image scanned lately is skipped.
actor ScmSourceScanner {
    struct Job: Sendable {
        var repository: RepositoryName
        var manifest: Digest
        var layers: [Descriptor]
    }

    let metadata: any MetadataAPI
    let blobs: any BlobAPI
    let logger: Logger
    let byteLimit: Int64
    static let queueLimit = 256
    private var queue: [Job] = []
    private var worker: Task<Void, Never>?
    private var recent: [Digest] = []
    /// Completed scans (tests wait on it).
    private(set) var completed = 0

    init(metadata: any MetadataAPI, blobs: any BlobAPI, byteLimit: Int64 = 256 << 20, logger: Logger) {
        self.metadata = metadata
        self.blobs = blobs
        self.byteLimit = byteLimit
        self.logger = logger
    }

    static let scannable: Set<String> = [
        MediaType.dockerLayerGzip, MediaType.ociLayerGzip, MediaType.ociLayer, MediaType.dockerLayerTar,
    ]

    /// Enqueues `manifest` when it has layers worth reading. Returns at once.
    nonisolated func enqueue(_ repository: RepositoryName, manifest: Digest, document: ManifestDocument) {
        let layers = (document.layers ?? []).filter { Self.scannable.contains($0.mediaType) }
        guard !layers.isEmpty else { return }
        Task { await self.add(Job(repository: repository, manifest: manifest, layers: layers)) }
    }

    private func add(_ job: Job) {
        guard !self.recent.contains(job.manifest), !self.queue.contains(where: { $0.manifest == job.manifest }) else { return }
        guard self.queue.count < Self.queueLimit else {
            self.logger.warning("scm-source scan queue full; skipping", metadata: ["manifest": "\(job.manifest)"])
            return
        }
        self.queue.append(job)
        if self.worker == nil {
            self.worker = Task(priority: .background) { await self.drain() }
        }
    }

    private func drain() async {
        while !self.queue.isEmpty {
            let job = self.queue.removeFirst()
            await self.scan(job)
            self.recent.append(job.manifest)
            if self.recent.count > 1024 { self.recent.removeFirst(self.recent.count - 1024) }
            self.completed += 1
        }
        self.worker = nil
    }

    private func scan(_ job: Job) async {
        var budget = self.byteLimit
        for layer in job.layers.reversed() where layer.size <= budget {
            budget -= layer.size
            do {
                guard let blob = try await self.metadata.blob(layer.digest, in: job.repository) else { continue }
                guard let content = try await self.findScmSource(in: blob, gzip: layer.mediaType != MediaType.ociLayer
                    && layer.mediaType != MediaType.dockerLayerTar)
                else { continue }
                guard let source = Self.parse(content, origin: .layer) else {
                    self.logger.info("unreadable scm-source.json in a layer", metadata: ["layer": "\(layer.digest)"])
                    return
                }
                try await self.metadata.recordScmSource(source, for: job.manifest, in: job.repository)
                return
            } catch {
                self.logger.info("scm-source scan of a layer failed", metadata: ["layer": "\(layer.digest)", "error": "\(error)"])
            }
        }
    }

    /// The content of `scm-source.json` at the root of the tar in `blob`, or nil.
    private func findScmSource(in blob: BlobRecord, gzip: Bool) async throws -> ByteBuffer? {
        var reader = TarReader(wanted: TarReader.scmSourceNames)
        let decompressor: (any NIODecompressor)? = gzip ? CompressionAlgorithm.gzip().decompressor : nil
        if let decompressor {
            decompressor.window = ByteBufferAllocator().buffer(capacity: 64 * 1024)
            try decompressor.startStream()
        }
        defer { try? decompressor?.finishStream() }
        do {
            try await self.blobs.read(blob, range: nil) { chunk in
                var chunk = chunk
                if let decompressor {
                    try chunk.decompressStream(with: decompressor) { output in
                        var output = output
                        try reader.feed(&output)
                    }
                } else {
                    try reader.feed(&chunk)
                }
                if reader.finished { throw TarReader.Stop() }
            }
        } catch is TarReader.Stop {}
        return reader.found
    }

    /// A scm-source record from JSON `{url, revision, author, status}`; nil when it is not that.
    static func parse(_ content: ByteBuffer, origin: ScmSource.Origin) -> ScmSource? {
        struct Raw: Decodable {
            var url: String?
            var revision: String?
            var author: String?
            var status: String?
        }
        guard let raw = try? JSONDecoder().decode(Raw.self, from: Data(content.readableBytesView)),
              raw.url != nil || raw.revision != nil
        else { return nil }
        func clip(_ value: String?) -> String? { value.map { String($0.prefix(1024)) } }
        return ScmSource(
            url: clip(raw.url), revision: clip(raw.revision), author: clip(raw.author), status: clip(raw.status),
            origin: origin, createdMillis: Int64(Date().timeIntervalSince1970 * 1000)
        )
    }
}

/// A streaming reader of (ustar, GNU and PAX) tar archives that keeps the content of one file.
struct TarReader {
    struct Stop: Error {}

    static let scmSourceNames: Set<String> = ["scm-source.json"]
    /// Largest file content kept.
    static let maximumContent = 64 * 1024

    let wanted: Set<String>
    private(set) var found: ByteBuffer?
    /// True once the wanted file was read or the archive ended.
    private(set) var finished = false

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

    /// The name relative to the archive root, without `./` or a leading `/`.
    static func normalize(_ name: String) -> String {
        var name = Substring(name)
        while name.hasPrefix("./") || name.hasPrefix("/") { name = name.hasPrefix("./") ? name.dropFirst(2) : name.dropFirst() }
        return String(name)
    }

    mutating func feed(_ buffer: inout ByteBuffer) throws {
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

struct TarError: Error, CustomStringConvertible {
    var description: String
}
