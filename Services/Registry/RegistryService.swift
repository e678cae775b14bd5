import Contracts
import Synchronization

/// The registry's operations, written against `MetadataAPI` and `BlobAPI` only — in process or
/// over the internal API, the same code. The gateway turns HTTP into these calls and nothing else;
/// what needs both services (a push, a mount, a pull, the layer scan) is decided here, and
/// features that span both (garbage collection, retention, caches) go here too, as wrappers of
/// the two protocols or services of their own (docs/architecture.md).
///
/// The operations are grouped by what a client does: `Push.swift` (upload sessions, mounts),
/// `Pull.swift` (blob lookups and reads), `Manifests.swift` (manifests, tags, listings, referrers).
package struct RegistryService: Sendable {
    package let metadata: any MetadataAPI
    package let blobs: any BlobAPI
    /// Reads pushed layers for `scm-source.json` after a push; nil to not look.
    package let scanner: ScmSourceScanner?
    /// Notes manifest pulls for retention (`notPulledFor`); nil to not record them.
    package let pulls: PullRecorder?
    /// Manifests and blob lookups kept in memory (`MetadataCache`); nil to always ask.
    package let cache: MetadataCache?
    /// Small blobs' bytes kept in memory (`BlobCache`); nil to always read them from the blob service.
    package let blobCache: BlobCache?
    /// What the storage answered about redirects, kept for the life of the process.
    let redirects = RedirectMemory()
    /// Metadata lookups in flight (`shared`).
    let manifestLookups = SharedFlights<CachedLookup, ManifestRecord>()
    let blobLookups = SharedFlights<CachedLookup, BlobRecord>()
    /// Copies of blobs that were already stored, being dropped after the push was answered.
    package let discards: BackgroundDiscards

    /// `backgroundDiscards`: duplicate copies dropped after the push's answer at once; past it,
    /// before the answer (0: always before).
    package init(
        metadata: any MetadataAPI, blobs: any BlobAPI, scanner: ScmSourceScanner? = nil, pulls: PullRecorder? = nil,
        cache: MetadataCache? = nil, blobCache: BlobCache? = nil, backgroundDiscards: Int = BackgroundDiscards.defaultLimit
    ) {
        self.discards = BackgroundDiscards(limit: backgroundDiscards)
        self.cache = cache
        self.blobCache = blobCache
        self.pulls = pulls
        self.metadata = metadata
        self.blobs = blobs
        self.scanner = scanner
    }
}

extension RegistryService {
    /// Runs `lookUp` for `key`, or waits for the same lookup in flight and takes its answer when
    /// it found something (else looks up itself). Concurrent misses of one item (a rollout's nodes
    /// resolving a new tag and looking up its layers) make one metadata call. A lookup waits only
    /// for one under the same ticket (the ticket is part of the key: a lookup that starts after
    /// this process's own delete or tag move never waits for an answer read before it) begun less
    /// than `CachedLookup.sharedFor` ago, and takes only an answer that found something: a tag
    /// pushed through another gateway meanwhile must be found at once (answers that found nothing
    /// are not cached either), so a lookup given "not found" asks again.
    func shared<Value: Sendable>(
        _ lookups: SharedFlights<CachedLookup, Value>, _ key: CachedLookup, cache: MetadataCache,
        _ lookUp: () async throws -> Value?
    ) async throws -> Value? {
        switch lookups.join(key, youngerThan: CachedLookup.sharedFor) {
        case .follow(let lookup):
            if let value = try await lookup.value() {
                cache.observer.shared()
                return value
            }
            return try await lookUp()
        case .lead(let lookup):
            let value: Value?
            do {
                value = try await lookUp()
            } catch {
                lookup.finish(nil)
                throw error
            }
            lookup.finish(value)
            return value
        }
    }
}

/// A metadata lookup that concurrent ones of the same item may share (`RegistryService.shared`).
struct CachedLookup: Hashable, Sendable {
    let repository: RepositoryName
    /// What is looked up: "manifest <reference>" or "blob <digest>".
    let item: String
    let ticket: MetadataCache.Ticket
    /// How long after it began a lookup may still be joined: well within the second in which
    /// other gateways' changes must be seen, and far longer than a lookup takes. (A lookup that
    /// joined waits for the answer however long it takes, as it would for its own call.)
    static let sharedFor = Duration.milliseconds(250)
}

/// Whether the storage redirects reads: unknown until the first GET asks, then fixed (it is a
/// setting of the blob service, `STORAGE_S3_EXTERNAL_STORE`, that does not change while it runs).
final class RedirectMemory: Sendable {
    private let neverRedirects = Mutex(false)

    var known: Bool { self.neverRedirects.withLock { $0 } }

    func learnNever() { self.neverRedirects.withLock { $0 = true } }
}

/// Drops an upload's copy of a blob metadata already had at another location — one internal call
/// and a delete, which a push need not wait for: the client's answer goes first. At most `limit`
/// run at once (a burst of re-pushes cannot pile up tasks); past it the push waits for its own.
/// A copy whose drop fails, or that a stopping process never drops, is only an unreferenced file
/// or object: the collector's orphan scan removes it (docs/operations.md).
package final class BackgroundDiscards: Sendable {
    package static let defaultLimit = 64
    let limit: Int
    private let running = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    /// Drops `blob` through `blobs`, in the background while fewer than `limit` drops run.
    func discard(_ blob: BlobRecord, through blobs: any BlobAPI) async {
        guard self.running.add(1, ordering: .relaxed).newValue <= self.limit else {
            self.running.subtract(1, ordering: .relaxed)
            try? await blobs.discard(blob)
            return
        }
        Task {
            try? await blobs.discard(blob)
            self.running.subtract(1, ordering: .relaxed)
        }
    }

    /// Drops running in the background now.
    package var inFlight: Int { self.running.load(ordering: .relaxed) }
}
