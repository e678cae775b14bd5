import Contracts
import Logging
import NIOCore

/// What the blob service keeps about an upload session besides its bytes.
struct UploadInfo: Sendable, Equatable, Codable {
    var repository: RepositoryName
    var algorithm: Digest.Algorithm
    /// Seconds since 1970 when the session was opened; used to expire abandoned sessions.
    var startedAt: Double
}

/// The running digest of an upload after `offset` bytes, stored with the upload.
struct SavedHashState: Sendable, Codable, Equatable {
    var offset: Int64
    var algorithm: Digest.Algorithm
    var state: [UInt8]
}

/// The contract every blob storage backend fulfils (filesystem, S3); `StorageDriverConformance`
/// in the tests runs the same checks on each.
///
/// Upload bytes are written where they will finally live as far as the backend allows, so that
/// committing never copies them: `commitUpload` returns the location the digest maps to.
///
/// **A committed blob never changes.** Closing an upload is two steps: `sealUpload` freezes the
/// session on storage, so that no append — on any process or replica, however long it has been
/// running — can change its bytes afterwards; the caller verifies the digest of exactly the sealed
/// bytes; `commitUpload` places them. Appends are refused on a sealed session, and a write that
/// was already running when the seal happened fails instead of reaching the blob (docs/storage.md).
protocol StorageDriver: Sendable {
    /// Creates an empty upload.
    func createUpload(_ id: UploadID, info: UploadInfo) async throws

    /// The upload's bookkeeping and its current size, or nil when there is no such upload.
    func upload(_ id: UploadID) async throws -> (info: UploadInfo, size: Int64)?

    /// Appends `body` at `offset`, calling `observe` with each chunk before it is written, and
    /// stores `digestState(newSize)` (the running digest) together with the bytes, so a later
    /// request on any replica continues it. Returns the new size.
    ///
    /// `offset` must be the size on storage when the write begins (416 otherwise, checked where
    /// no other writer can change it); a concurrent writer or a seal makes this write fail (409),
    /// never interleave.
    func appendUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, at offset: Int64, body: Body, observe: (ByteBuffer) -> Void,
        digestState: (Int64) -> SavedHashState?
    ) async throws -> Int64 where Body.Element == ByteBuffer

    /// Freezes the upload for commit: afterwards no append can change it. Returns the sealed size
    /// and the digest state saved with exactly those bytes (nil when there is none). 409 while an
    /// append runs or when the upload is already sealed.
    func sealUpload(_ id: UploadID) async throws -> (size: Int64, digest: SavedHashState?)

    /// The closing request: appends `body` at `offset` (as `appendUpload`, saving no digest
    /// state) and seals the upload, with no other writer or seal able to come between. Returns
    /// the sealed size and the saved digest state of the bytes before `offset`'s append, if any.
    func appendAndSeal<Body: AsyncSequence & Sendable>(
        _ id: UploadID, at offset: Int64, body: Body, observe: (ByteBuffer) -> Void
    ) async throws -> (size: Int64, digest: SavedHashState?) where Body.Element == ByteBuffer

    /// Streams the bytes of a sealed upload (to re-hash them when no saved state covers them).
    func readUpload(_ id: UploadID, into sink: (ByteBuffer) async throws -> Void) async throws

    /// Makes a sealed upload durable and places it as the blob `digest`; returns its location.
    func commitUpload(_ id: UploadID, as digest: Digest) async throws -> String

    /// The saved digest state of an upload, if any.
    func loadHashState(_ id: UploadID) async throws -> SavedHashState?

    /// Removes an upload and its bytes; no error when it is already gone. A sealed upload is being
    /// committed: it is removed only with `evenIfSealed` (by the committing request itself after a
    /// digest mismatch, or by expiry long after any commit ended), else 409.
    func abortUpload(_ id: UploadID, evenIfSealed: Bool) async throws

    /// Every upload with its start time, to find abandoned ones.
    func listUploads() async throws -> [(id: UploadID, startedAt: Double)]

    /// Whether the storage answers: one cheap request, never a listing (readiness probes call it).
    func isReachable() async -> Bool

    /// Whether `location` has this driver's layout (a location from a caller is checked before it
    /// names a file or key, so `../` cannot leave the storage).
    func isOwnLocation(_ location: String) -> Bool

    /// Streams the inclusive `range` (or all) of the blob at `location` to `sink`.
    func read(
        location: String, range: ClosedRange<Int64>?, into sink: (ByteBuffer) async throws -> Void
    ) async throws

    /// Deletes the blob at `location`; no error when it is already gone.
    func deleteBlob(location: String) async throws

    /// Deletes many blobs (the garbage collector's batches); the locations deleted or already
    /// gone. S3 uses `DeleteObjects`; the default deletes one at a time.
    func deleteBlobs(locations: [String]) async throws -> Set<String>

    /// Committed blobs (under `blobs/`) after `location` in location order, at most `limit`
    /// looked at; `next` continues the listing (nil at its end).
    func listBlobs(after location: String?, limit: Int) async throws -> (blobs: [StoredBlob], next: String?)

    /// A URL where a client can fetch the blob itself (S3 presigned), or nil to stream it here.
    func externalURL(location: String) async throws -> String?

    /// Removes storage-level leftovers older than `cutoff` (seconds since 1970) that no session
    /// knows; returns how many.
    func collectGarbage(olderThan cutoff: Double) async throws -> Int
}

extension StorageDriver {
    func externalURL(location: String) async throws -> String? { nil }

    func deleteBlobs(locations: [String]) async throws -> Set<String> {
        var deleted = Set<String>()
        for location in locations {
            do {
                try await self.deleteBlob(location: location)
                deleted.insert(location)
            } catch {
                Logger(label: "pierone.blob").warning(
                    "could not delete a blob", metadata: ["location": "\(location)", "error": "\(error)"]
                )
            }
        }
        return deleted
    }
    func collectGarbage(olderThan cutoff: Double) async throws -> Int { 0 }
}

extension RegistryError {
    /// 409: another request is writing to, committing or removing this upload.
    static func uploadBusy(_ id: UploadID, _ why: String = "another request is writing to this upload") -> RegistryError {
        RegistryError(.uploadBusy, "\(why); retry, or start a new upload", detail: ["upload": id.value])
    }
}

extension StorageDriver {
    /// Two steps; another writer may append between them, which the caller's digest check sees
    /// (the sealed size is not the appended one).
    func appendAndSeal<Body: AsyncSequence & Sendable>(
        _ id: UploadID, at offset: Int64, body: Body, observe: (ByteBuffer) -> Void
    ) async throws -> (size: Int64, digest: SavedHashState?) where Body.Element == ByteBuffer {
        _ = try await self.appendUpload(id, at: offset, body: body, observe: observe, digestState: { _ in nil })
        return try await self.sealUpload(id)
    }
}
