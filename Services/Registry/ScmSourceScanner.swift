import CompressNIO
import Contracts
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Finds a `scm-source.json` at the root of a pushed image's layers, after the push has been
/// answered: the manifest PUT only enqueues the image, and this service — one of the process's
/// `ServiceGroup`, stopped before the stores it writes to — reads layers (last first, where a
/// Dockerfile's final `COPY scm-source.json /` lands) through gunzip and a tar reader, stopping at
/// the first hit. A source from a trusted pusher's header is never replaced.
///
/// Bounded, because layers are the pusher's bytes: per image, each distinct layer is read once, at
/// most `byteLimit` bytes are read from storage and `inflatedLimit` bytes come out of gunzip
/// (counted as they pass, whatever the descriptors declare — a 4 MB layer can inflate to 4 GB),
/// and the scan stops after `timeLimit`. At most `queueLimit` images wait, at most
/// `perClientLimit` of them from one client, so one pusher cannot crowd out the others' scans.
/// An image scanned lately is skipped.
package final class ScmSourceScanner: Service, CustomStringConvertible, Sendable {
    struct Job: Sendable {
        var repository: RepositoryName
        var manifest: Digest
        var layers: [Descriptor]
        var client: String
    }

    private struct Queue {
        var queued: [String: Int] = [:]
        var manifests: Set<Digest> = []
        var recent: [Digest] = []
        var completed = 0
        var lastScan: (read: Int64, inflated: Int64, stoppedByLimit: Bool) = (0, 0, false)
    }

    let metadata: any MetadataAPI
    let blobs: any BlobAPI
    let logger: Logger
    let byteLimit: Int64
    let inflatedLimit: Int64
    let timeLimit: Duration
    static let queueLimit = 256
    static let perClientLimit = 16
    private let state = Mutex(Queue())
    private let jobs: AsyncStream<Job>
    private let submit: AsyncStream<Job>.Continuation

    package init(
        metadata: any MetadataAPI, blobs: any BlobAPI, byteLimit: Int64 = 256 << 20, inflatedLimit: Int64 = 512 << 20,
        timeLimit: Duration = .seconds(5), logger: Logger
    ) {
        self.metadata = metadata
        self.blobs = blobs
        self.byteLimit = byteLimit
        self.inflatedLimit = inflatedLimit
        self.timeLimit = timeLimit
        self.logger = logger
        (self.jobs, self.submit) = AsyncStream.makeStream(of: Job.self, bufferingPolicy: .unbounded)
    }

    package var description: String { "ScmSourceScanner" }

    /// Images of `client` waiting to be scanned.
    func waiting(for client: String) -> Int { self.state.withLock { $0.queued[client] ?? 0 } }

    /// Completed scans (tests wait on it).
    package var completed: Int { self.state.withLock { $0.completed } }
    /// Bytes read and inflated by the last scan, and whether a limit ended it (tests read them).
    var lastScan: (read: Int64, inflated: Int64, stoppedByLimit: Bool) { self.state.withLock { $0.lastScan } }

    static let scannable: Set<String> = [
        MediaType.dockerLayerGzip, MediaType.ociLayerGzip, MediaType.ociLayer, MediaType.dockerLayerTar,
    ]

    /// Enqueues `manifest` when it has layers worth reading, counted against `client`. Returns at
    /// once; an image beyond the queue's bounds is skipped (and logged).
    package func enqueue(_ repository: RepositoryName, manifest: Digest, document: ManifestDocument, client: String) {
        var seen = Set<Digest>()
        // Last first; a layer listed twice is read once (at its last position).
        let layers = (document.layers ?? []).reversed().filter { Self.scannable.contains($0.mediaType) && seen.insert($0.digest).inserted }
        guard !layers.isEmpty else { return }
        let admitted = self.state.withLock { queue -> Bool in
            guard !queue.recent.contains(manifest), !queue.manifests.contains(manifest) else { return false }
            guard queue.manifests.count < Self.queueLimit, queue.queued[client, default: 0] < Self.perClientLimit else {
                self.logger.warning("scm-source scan queue full; skipping", metadata: ["manifest": "\(manifest)"])
                return false
            }
            queue.manifests.insert(manifest)
            queue.queued[client, default: 0] += 1
            return true
        }
        if admitted {
            self.submit.yield(Job(repository: repository, manifest: manifest, layers: layers, client: client))
        }
    }

    /// Scans queued images one at a time until graceful shutdown, which cancels the scan in
    /// progress and drops the images still waiting (the scan is best effort).
    package func run() async throws {
        await cancelWhenGracefulShutdown {
            for await job in self.jobs {
                await self.scan(job)
                self.state.withLock { queue in
                    queue.manifests.remove(job.manifest)
                    queue.queued[job.client, default: 1] -= 1
                    if queue.queued[job.client] == 0 { queue.queued[job.client] = nil }
                    queue.recent.append(job.manifest)
                    if queue.recent.count > 1024 { queue.recent.removeFirst(queue.recent.count - 1024) }
                    queue.completed += 1
                }
                if Task.isCancelled { break }
            }
        }
        self.submit.finish()
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
            let spent = (self.byteLimit - budget.read, self.inflatedLimit - budget.inflated, budget.exhausted)
            self.state.withLock { $0.lastScan = spent }
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
    package static func parse(_ content: ByteBuffer, origin: ScmSource.Origin) -> ScmSource? {
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
