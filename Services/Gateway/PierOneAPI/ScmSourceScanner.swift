import CompressNIO
import Contracts
import Foundation
import Logging
import NIOCore

/// Finds a `scm-source.json` at the root of a pushed image's layers, after the push has been
/// answered: the manifest PUT only enqueues the image, and one background task reads layers
/// (last first, where a Dockerfile's final `COPY scm-source.json /` lands) through gunzip and a
/// tar reader, stopping at the first hit. A source from a trusted pusher's header is never
/// replaced.
///
/// Bounded, because layers are the pusher's bytes: per image, each distinct layer is read once, at
/// most `byteLimit` bytes are read from storage and `inflatedLimit` bytes come out of gunzip
/// (counted as they pass, whatever the descriptors declare — a 4 MB layer can inflate to 4 GB),
/// and the scan stops after `timeLimit`. At most `queueLimit` images wait, at most
/// `perClientLimit` of them from one client, so one pusher cannot crowd out the others' scans.
/// An image scanned lately is skipped.
actor ScmSourceScanner {
    struct Job: Sendable {
        var repository: RepositoryName
        var manifest: Digest
        var layers: [Descriptor]
        var client: String
    }

    let metadata: any MetadataAPI
    let blobs: any BlobAPI
    let logger: Logger
    let byteLimit: Int64
    let inflatedLimit: Int64
    let timeLimit: Duration
    static let queueLimit = 256
    static let perClientLimit = 16
    private var queue: [Job] = []
    private var queued: [String: Int] = [:]
    private var worker: Task<Void, Never>?
    private var recent: [Digest] = []
    /// Completed scans (tests wait on it).
    private(set) var completed = 0
    /// Bytes read and inflated by the last scan, and whether a limit ended it (tests read them).
    private(set) var lastScan: (read: Int64, inflated: Int64, stoppedByLimit: Bool) = (0, 0, false)

    init(
        metadata: any MetadataAPI, blobs: any BlobAPI, byteLimit: Int64 = 256 << 20, inflatedLimit: Int64 = 512 << 20,
        timeLimit: Duration = .seconds(5), logger: Logger
    ) {
        self.metadata = metadata
        self.blobs = blobs
        self.byteLimit = byteLimit
        self.inflatedLimit = inflatedLimit
        self.timeLimit = timeLimit
        self.logger = logger
    }

    static let scannable: Set<String> = [
        MediaType.dockerLayerGzip, MediaType.ociLayerGzip, MediaType.ociLayer, MediaType.dockerLayerTar,
    ]

    /// Enqueues `manifest` when it has layers worth reading, counted against `client`. Returns at once.
    nonisolated func enqueue(_ repository: RepositoryName, manifest: Digest, document: ManifestDocument, client: String) {
        var seen = Set<Digest>()
        // Last first; a layer listed twice is read once (at its last position).
        let layers = (document.layers ?? []).reversed().filter { Self.scannable.contains($0.mediaType) && seen.insert($0.digest).inserted }
        guard !layers.isEmpty else { return }
        Task { await self.add(Job(repository: repository, manifest: manifest, layers: layers, client: client)) }
    }

    private func add(_ job: Job) {
        guard !self.recent.contains(job.manifest), !self.queue.contains(where: { $0.manifest == job.manifest }) else { return }
        guard self.queue.count < Self.queueLimit, self.queued[job.client, default: 0] < Self.perClientLimit else {
            self.logger.warning("scm-source scan queue full; skipping", metadata: ["manifest": "\(job.manifest)"])
            return
        }
        self.queue.append(job)
        self.queued[job.client, default: 0] += 1
        if self.worker == nil {
            self.worker = Task(priority: .background) { await self.drain() }
        }
    }

    private func drain() async {
        while !self.queue.isEmpty {
            let job = self.queue.removeFirst()
            self.queued[job.client, default: 1] -= 1
            if self.queued[job.client] == 0 { self.queued[job.client] = nil }
            await self.scan(job)
            self.recent.append(job.manifest)
            if self.recent.count > 1024 { self.recent.removeFirst(self.recent.count - 1024) }
            self.completed += 1
        }
        self.worker = nil
    }

    /// What one image's scan may still spend.
    struct Budget {
        var read: Int64
        var inflated: Int64
        let deadline: ContinuousClock.Instant
        var exhausted = false
    }

    private func scan(_ job: Job) async {
        var budget = Budget(read: self.byteLimit, inflated: self.inflatedLimit, deadline: .now + self.timeLimit)
        defer {
            self.lastScan = (self.byteLimit - budget.read, self.inflatedLimit - budget.inflated, budget.exhausted)
        }
        for layer in job.layers {
            guard !budget.exhausted else {
                self.logger.info("scm-source scan stopped at its limit", metadata: ["manifest": "\(job.manifest)"])
                return
            }
            do {
                guard let blob = try await self.metadata.blob(layer.digest, in: job.repository) else { continue }
                guard let content = try await self.findScmSource(
                    in: blob, gzip: layer.mediaType != MediaType.ociLayer && layer.mediaType != MediaType.dockerLayerTar,
                    budget: &budget
                )
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

    /// The content of `scm-source.json` at the root of the tar in `blob`, or nil; spends `budget`
    /// on the bytes read and inflated, and stops when it runs out.
    private func findScmSource(in blob: BlobRecord, gzip: Bool, budget: inout Budget) async throws -> ByteBuffer? {
        var reader = TarReader(wanted: TarReader.scmSourceNames)
        let decompressor: (any NIODecompressor)? = gzip ? CompressionAlgorithm.gzip().decompressor : nil
        if let decompressor {
            decompressor.window = ByteBufferAllocator().buffer(capacity: 64 * 1024)
            try decompressor.startStream()
        }
        defer { try? decompressor?.finishStream() }
        var spent = budget
        do {
            try await self.blobs.read(blob, range: nil) { chunk in
                var chunk = chunk
                spent.read -= Int64(chunk.readableBytes)
                guard spent.read >= 0, ContinuousClock.now < spent.deadline else {
                    spent.exhausted = true
                    throw TarReader.Stop()
                }
                if let decompressor {
                    try chunk.decompressStream(with: decompressor) { output in
                        var output = output
                        spent.inflated -= Int64(output.readableBytes)
                        guard spent.inflated >= 0, ContinuousClock.now < spent.deadline else {
                            spent.exhausted = true
                            throw TarReader.Stop()
                        }
                        try reader.feed(&output)
                        if reader.finished { throw TarReader.Stop() }
                    }
                } else {
                    try reader.feed(&chunk)
                }
                if reader.finished { throw TarReader.Stop() }
            }
        } catch is TarReader.Stop {}
        budget = spent
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
