import NIOCore

/// The identifier of an upload session: a UUID, so it is safe in paths and URLs.
package struct UploadID: Hashable, Sendable, ValidatedString {
    package let value: String

    /// Accepts only the canonical lowercase 8-4-4-4-12 UUID form.
    package init?(_ string: some StringProtocol) {
        let bytes = Array(string.utf8)
        guard bytes.count == 36 else { return nil }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return nil }
            } else {
                guard (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte) else { return nil }
            }
        }
        self.value = String(string)
    }

    package var description: String { self.value }
}

/// Where an upload session stands.
package struct UploadStatus: Sendable, Equatable, Codable {
    package var id: UploadID
    package var repository: RepositoryName
    /// Bytes received so far; the next chunk must start here.
    package var offset: Int64

    package init(id: UploadID, repository: RepositoryName, offset: Int64) {
        self.id = id
        self.repository = repository
        self.offset = offset
    }
}

/// Everything the gateway asks of the blob service: upload sessions and reads.
///
/// The gateway has already decided who may do what; the blob service checks only that a session
/// is used with the repository that opened it.
package protocol BlobAPI: Sendable {
    /// Opens an upload session for `repository` whose digest will be computed with `algorithm`.
    /// `owner` names the client (an identity, or an address when anonymous): each may hold a
    /// bounded number of open sessions, beyond which this throws 429 `TOOMANYREQUESTS`.
    func startUpload(for repository: RepositoryName, algorithm: Digest.Algorithm, owner: String) async throws
        -> UploadStatus

    /// The session's current state; `BLOB_UPLOAD_UNKNOWN` when there is none.
    func uploadStatus(_ id: UploadID, for repository: RepositoryName) async throws -> UploadStatus

    /// Appends a stream of bytes. When `offset` is given it must equal the bytes received so far
    /// (416 otherwise). The bytes are hashed as they pass and never held whole in memory.
    func appendUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, for repository: RepositoryName, at offset: Int64?, body: Body
    ) async throws -> UploadStatus where Body.Element == ByteBuffer

    /// Makes the upload durable and verifies it against `digest`. On a mismatch the bytes are
    /// discarded and `DIGEST_INVALID` thrown. The session ends either way.
    func commitUpload(_ id: UploadID, for repository: RepositoryName, digest: Digest) async throws -> BlobRecord

    /// Appends `body` (the closing request's last chunk, at `offset` when it gave one), then commits
    /// as `commitUpload` does: one call, so a monolithic push costs one internal request here.
    func commitUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, for repository: RepositoryName, digest: Digest, appending body: Body, at offset: Int64?
    ) async throws -> BlobRecord where Body.Element == ByteBuffer

    /// Ends a session and removes its bytes.
    func cancelUpload(_ id: UploadID, for repository: RepositoryName) async throws

    /// Streams the bytes of `blob` (or the inclusive `range` of them) to `sink`, chunk by chunk.
    func read(
        _ blob: BlobRecord, range: ClosedRange<Int64>?, into sink: (ByteBuffer) async throws -> Void
    ) async throws

    /// Removes the bytes of a committed blob that metadata does not record: a second upload of a
    /// digest stored before at another location, or a blob whose row the garbage collector
    /// removed. Never called for a location metadata refers to.
    func discard(_ blob: BlobRecord) async throws

    /// `discard` for many locations at once (the garbage collector, the orphan scan): returns the
    /// locations deleted (or already gone); the others failed (or are not this storage's).
    func discard(locations: [String]) async throws -> [String]

    /// The committed blobs in storage after `location` (nil: from the start), in location order,
    /// at most `limit`: the orphan scan compares them with the metadata.
    func storedBlobs(after location: String?, limit: Int) async throws -> StoredBlobPage

    /// A URL where the client can fetch `blob` itself (a presigned S3 URL when
    /// `STORAGE_S3_EXTERNAL_STORE` is on), or nil to stream it through the registry.
    func externalURL(for blob: BlobRecord) async throws -> String?
}

/// A committed blob as storage lists it.
package struct StoredBlob: Sendable, Equatable, Codable {
    package var location: String
    package var size: Int64
    /// When it was written (ms since 1970).
    package var modifiedMillis: Int64

    package init(location: String, size: Int64, modifiedMillis: Int64) {
        self.location = location
        self.size = size
        self.modifiedMillis = modifiedMillis
    }
}

/// A page of the storage listing; `next` continues it (nil: the end).
package struct StoredBlobPage: Sendable, Equatable, Codable {
    package var items: [StoredBlob]
    package var next: String?

    package init(items: [StoredBlob], next: String?) {
        self.items = items
        self.next = next
    }
}

extension BlobAPI {
    /// In process: the append, then the commit.
    package func commitUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, for repository: RepositoryName, digest: Digest, appending body: Body, at offset: Int64?
    ) async throws -> BlobRecord where Body.Element == ByteBuffer {
        _ = try await self.appendUpload(id, for: repository, at: offset, body: body)
        return try await self.commitUpload(id, for: repository, digest: digest)
    }

    /// A session counted against the local client (tests and tools acting for the registry itself).
    package func startUpload(for repository: RepositoryName, algorithm: Digest.Algorithm) async throws -> UploadStatus {
        try await self.startUpload(for: repository, algorithm: algorithm, owner: "local")
    }
}
