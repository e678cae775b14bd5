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

    /// A committed blob linked into any repository, for a mount without `from`; nil when none.
    func mountableBlob(_ digest: Digest) async throws -> BlobRecord?

    /// Removes a tag. `MANIFEST_UNKNOWN` when absent; 405 when the tag policy makes it immutable.
    func deleteTag(_ tag: Tag, in repository: RepositoryName) async throws

    /// Removes a manifest and every tag on it. `MANIFEST_UNKNOWN` when absent; 405 when one of its
    /// tags is immutable; 409 while another manifest of the repository lists it.
    func deleteManifest(_ digest: Digest, in repository: RepositoryName) async throws

    /// Unlinks a blob from a repository. `BLOB_UNKNOWN` when not linked; 409 while a manifest of the
    /// repository references it.
    func unlinkBlob(_ digest: Digest, from repository: RepositoryName) async throws

    /// Descriptors of the manifests in `repository` whose `subject` is `subject`, ordered by
    /// digest, optionally only those of one `artifactType`.
    func referrers(
        of subject: Digest, in repository: RepositoryName, artifactType: String?, page: PageRequest
    ) async throws -> Page<Descriptor>
}
