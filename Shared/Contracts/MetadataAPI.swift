/// Everything the gateway asks of the metadata service.
///
/// All-in-one mode implements it in process; split mode with an HTTP client. The gateway never
/// knows which. Failures a client should see are thrown as `RegistryError`.
package protocol MetadataAPI: PierOneQueries {
    /// The blob if it is linked into `repository` (pushed or mounted there), else nil.
    func blob(_ digest: Digest, in repository: RepositoryName) async throws -> BlobRecord?

    /// Records a committed blob and links it into `repository`. Idempotent. Returns the blob as
    /// recorded: when the digest was stored before, its first location stays, and the caller
    /// discards the bytes it just stored elsewhere (`BlobAPI.discard`).
    @discardableResult
    func linkBlob(_ blob: BlobRecord, into repository: RepositoryName) async throws -> BlobRecord

    /// Stores a manifest and moves its tags in one transaction, enforcing tag immutability and
    /// that every referenced blob and manifest exists in the repository.
    func putManifest(_ put: ManifestPut) async throws

    /// The manifest a tag or digest names in `repository`, or nil.
    func manifest(_ reference: Reference, in repository: RepositoryName) async throws -> ManifestRecord?

    /// Tags of a repository in lexical order; nil when the repository does not exist.
    func tags(in repository: RepositoryName, page: PageRequest) async throws -> Page<String>?

    /// Repository names in lexical order.
    func repositories(page: PageRequest) async throws -> Page<String>

    /// Links the blob `digest` into `repository` when one of `sources` links it (nil: any
    /// repository), in one step, so the garbage collector cannot remove it in between. Returns the
    /// blob, or nil when no source has it (the client then uploads it).
    func mountBlob(_ digest: Digest, into repository: RepositoryName, from sources: [RepositoryName]?) async throws
        -> BlobRecord?

    /// Removes a tag. `MANIFEST_UNKNOWN` when absent; 405 when the tag policy makes it immutable.
    func deleteTag(_ tag: Tag, in repository: RepositoryName) async throws

    /// Removes a manifest and every tag on it. `MANIFEST_UNKNOWN` when absent; 405 when one of its
    /// tags is immutable; 409 while another manifest of the repository lists it.
    func deleteManifest(_ digest: Digest, in repository: RepositoryName) async throws

    /// Unlinks a blob from a repository. `BLOB_UNKNOWN` when not linked; 409 while a manifest of the
    /// repository references it.
    func unlinkBlob(_ digest: Digest, from repository: RepositoryName) async throws

    /// Reviews up to `limit` entries of the garbage collector's queue that were queued at or
    /// before `cutoff` (milliseconds since 1970: now minus the grace period), removing what is
    /// garbage (`GarbageSweep`). The bytes of removed blobs are the caller's to delete afterwards.
    func collectGarbage(queuedBefore cutoff: Int64, limit: Int) async throws -> GarbageSweep

    /// Forgets removed blobs whose bytes the collector deleted (`GarbageSweep.removed`); until
    /// then every review hands them out again, a while after their removal.
    func purgeCollected(_ locations: [String]) async throws

    // Retention (`RetentionPolicy`): deletions the registry makes itself, each conditional on what
    // it decided on, announced with `reason`.

    /// Deletes `tag` if it still names `digest` (else false: it moved or went meanwhile), immutable
    /// or not as `includingImmutable` says; the manifest goes too when nothing keeps it (no other
    /// tag, no index, no subject still there).
    func expireTag(_ tag: Tag, in repository: RepositoryName, naming digest: Digest, reason: String, includingImmutable: Bool)
        async throws -> Bool

    /// Deletes manifest `digest` if it is untagged, in no index, of no subject still there, and was
    /// pushed before `cutoff` (ms since 1970); false otherwise.
    func expireManifest(_ digest: Digest, in repository: RepositoryName, pushedBefore cutoff: Int64, reason: String)
        async throws -> Bool

    /// The manifests of `repository` that `expireManifest` would delete, by digest.
    func untaggedManifests(in repository: RepositoryName, pushedBefore cutoff: Int64, page: PageRequest) async throws
        -> Page<UntaggedManifest>

    /// Records pulls (in batches, not one write per pull): the tags naming each manifest count as
    /// pulled then.
    func recordPulls(_ pulls: [PullRecord]) async throws

    /// Up to `limit` entries of the collector's queue, oldest first, with what a review would
    /// remove now (entries whose review would remove nothing are left out); whether more were queued.
    func garbageCandidates(limit: Int) async throws -> GarbageCandidates

    /// Takes or renews the lease `name` for `holder` for `seconds` (by the database's clock): true
    /// when `holder` holds it now, false while another holder's lease runs. Replicas run the
    /// collector and retention one at a time with it.
    func lease(_ name: String, holder: String, seconds: Int) async throws -> Bool

    /// Which of `locations` (at most 1,000) no blob row and no collected blob awaiting deletion
    /// holds: the orphan scan's candidates.
    func unknownLocations(_ locations: [String]) async throws -> [String]

    /// What the metadata holds about `digest` (`GarbageExplanation`, without its verdict).
    func explain(_ digest: Digest) async throws -> GarbageExplanation

    /// Descriptors of the manifests in `repository` whose `subject` is `subject`, ordered by
    /// digest, optionally only those of one `artifactType`.
    func referrers(
        of subject: Digest, in repository: RepositoryName, artifactType: String?, page: PageRequest
    ) async throws -> Page<Descriptor>

    /// The repositories whose cached answers may have changed since `cursors` (`ChangeBatch`),
    /// and how fresh this answer is: what a cache in front of this API follows.
    func changes(after cursors: ChangeCursors) async throws -> ChangeBatch
}

extension MetadataAPI {
    /// A metadata API without a change log: every answer says nothing can be trusted, so a cache
    /// in front of it always asks.
    package func changes(after cursors: ChangeCursors) async throws -> ChangeBatch {
        ChangeBatch(epoch: "", position: 0, repositories: nil, staleness: nil)
    }
}
