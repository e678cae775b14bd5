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
                guard let source = ScmSource.parse(content, origin: .layer) else {
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
}

extension ScmSource {
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
