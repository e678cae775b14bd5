import Contracts
import NIOCore

/// Pushing blobs: upload sessions, closing them into a linked blob, cross-repository mounts.
extension RegistryService {
    /// Opens an upload session for `repository`, counted against `client`.
    package func startUpload(for repository: RepositoryName, algorithm: Digest.Algorithm, client: String) async throws
        -> UploadStatus
    {
        try await self.blobs.startUpload(for: repository, algorithm: algorithm, owner: client)
    }

    package func uploadStatus(_ id: UploadID, in repository: RepositoryName) async throws -> UploadStatus {
        try await self.blobs.uploadStatus(id, for: repository)
    }

    package func appendUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, in repository: RepositoryName, at offset: Int64?, body: Body
    ) async throws -> UploadStatus where Body.Element == ByteBuffer {
        try await self.blobs.appendUpload(id, for: repository, at: offset, body: body)
    }

    package func cancelUpload(_ id: UploadID, in repository: RepositoryName) async throws {
        try await self.blobs.cancelUpload(id, for: repository)
    }

    /// Closes an upload session: appends `body` (at `offset` when the request gave a range),
    /// commits it as `digest` (the blob service verifies the sealed bytes), links the blob into
    /// `repository`, and drops this upload's copy when metadata already had the digest elsewhere
    /// (S3 keeps each upload at a key of its own), after the answer (`BackgroundDiscards`). Failing
    /// to drop it leaves only an unreferenced object, never a missing one.
    ///
    /// No status call comes first: the append and the commit refuse an unknown session themselves.
    ///
    /// A closing request that carries the whole blob (a monolithic push) leaves a copy of a small
    /// blob in the `blobCache`, for the pull that often follows; `length` is the body's size when
    /// the request said it (a larger one is not collected at all).
    package func completeUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, in repository: RepositoryName, digest: Digest, appending body: Body?, at offset: Int64?,
        length: Int64? = nil
    ) async throws -> BlobRecord where Body.Element == ByteBuffer {
        // The client's length only rules a blob out: a push reserves as its bytes arrive (by
        // doubling), so a client that announces 4 MiB and trickles holds no more than it sent.
        let wanted = (offset ?? 0) == 0 && body != nil && length.map { self.blobCache?.admits($0) ?? false } ?? true
        let capture = wanted ? self.blobCache?.capture() : nil
        let blob = if let body, let capture {
            try await self.blobs.commitUpload(
                id, for: repository, digest: digest, appending: CapturedBody(base: body, capture: capture), at: offset
            )
        } else if let body {
            try await self.blobs.commitUpload(id, for: repository, digest: digest, appending: body, at: offset)
        } else {
            try await self.blobs.commitUpload(id, for: repository, digest: digest)
        }
        // The blob service verified the digest of the session's bytes; they are the captured ones
        // exactly when their count is the blob's size (no earlier chunk).
        capture?.finish(as: blob)
        let ticket = self.cache?.ticket(repository)
        let recorded = try await self.metadata.linkBlob(blob, into: repository)
        // A pushed blob is often pulled soon after (a CI job's next step, a deploy): its lookup is
        // remembered as a pull's would be, under the ticket taken before the link.
        if let ticket { self.cache?.store(recorded, in: repository, ticket: ticket) }
        if recorded.location != blob.location {
            await self.discards.discard(blob, through: self.blobs)
        }
        return recorded
    }

    /// Where a cross-repository mount may take a blob from.
    package enum MountSource: Sendable, Equatable {
        /// Any repository that links it (a caller who may pull everything).
        case anyRepository
        /// The first of these repositories that links it (those the caller may pull).
        case repositories([RepositoryName])
    }

    /// Links `digest` into `repository` from `source`; false when no permitted source has it, so
    /// the client uploads it instead.
    ///
    /// One metadata call: finding the source and linking happen in one transaction, so a blob the
    /// garbage collector removes meanwhile is never linked again (the client uploads it instead).
    package func mount(_ digest: Digest, into repository: RepositoryName, from source: MountSource) async throws -> Bool {
        let sources: [RepositoryName]? = switch source {
        case .anyRepository: nil
        case .repositories(let candidates): candidates
        }
        let ticket = self.cache?.ticket(repository)
        guard let mounted = try await self.metadata.mountBlob(digest, into: repository, from: sources) else { return false }
        if let ticket { self.cache?.store(mounted, in: repository, ticket: ticket) }
        return true
    }
}

/// A request body that copies its chunks into a `BlobCache.Capture` as they are read.
struct CapturedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let capture: BlobCache.Capture

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let capture: BlobCache.Capture

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await self.base.next() else { return nil }
            self.capture.append(chunk)
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.base.makeAsyncIterator(), capture: self.capture)
    }
}
