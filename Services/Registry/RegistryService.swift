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
    /// What the storage answered about redirects, kept for the life of the process.
    let redirects = RedirectMemory()

    package init(
        metadata: any MetadataAPI, blobs: any BlobAPI, scanner: ScmSourceScanner? = nil, pulls: PullRecorder? = nil,
        cache: MetadataCache? = nil
    ) {
        self.cache = cache
        self.pulls = pulls
        self.metadata = metadata
        self.blobs = blobs
        self.scanner = scanner
    }
}

/// Whether the storage redirects reads: unknown until the first GET asks, then fixed (it is a
/// setting of the blob service, `STORAGE_S3_EXTERNAL_STORE`, that does not change while it runs).
final class RedirectMemory: Sendable {
    private let neverRedirects = Mutex(false)

    var known: Bool { self.neverRedirects.withLock { $0 } }

    func learnNever() { self.neverRedirects.withLock { $0 = true } }
}
