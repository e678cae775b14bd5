import Contracts
import NIOCore

/// The operations that need both metadata and blobs, written against `MetadataAPI` and `BlobAPI`
/// only — in process or over the internal API, the same code. The gateway turns HTTP into these
/// calls; features that span both services (garbage collection, retention, caches) go here too,
/// as wrappers of the two protocols or services of their own (docs/architecture.md).
package struct RegistryService: Sendable {
    package let metadata: any MetadataAPI
    package let blobs: any BlobAPI

    package init(metadata: any MetadataAPI, blobs: any BlobAPI) {
        self.metadata = metadata
        self.blobs = blobs
    }

    /// Closes an upload session: appends `body` (at `offset` when the request gave a range),
    /// commits it as `digest` (the blob service verifies the sealed bytes), links the blob into
    /// `repository`, and drops this upload's copy when metadata already had the digest elsewhere
    /// (S3 keeps each upload at a key of its own). Failing to drop it leaves only an unreferenced
    /// object, never a missing one.
    package func completeUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, in repository: RepositoryName, digest: Digest, appending body: Body?, at offset: Int64?
    ) async throws -> BlobRecord where Body.Element == ByteBuffer {
        let blob = if let body {
            try await self.blobs.commitUpload(id, for: repository, digest: digest, appending: body, at: offset)
        } else {
            try await self.blobs.commitUpload(id, for: repository, digest: digest)
        }
        let recorded = try await self.metadata.linkBlob(blob, into: repository)
        if recorded.location != blob.location {
            try? await self.blobs.discard(blob)
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
    package func mount(_ digest: Digest, into repository: RepositoryName, from source: MountSource) async throws -> Bool {
        let blob: BlobRecord?
        switch source {
        case .anyRepository:
            blob = try await self.metadata.mountableBlob(digest)
        case .repositories(let candidates):
            var found: BlobRecord?
            for candidate in candidates {
                if let record = try await self.metadata.blob(digest, in: candidate) {
                    found = record
                    break
                }
            }
            blob = found
        }
        guard let blob else { return false }
        try await self.metadata.linkBlob(blob, into: repository)
        return true
    }

    /// How a blob GET is answered.
    package enum PullAnswer: Sendable, Equatable {
        /// Stream the blob's bytes through the registry.
        case stream(BlobRecord)
        /// Redirect the client to the storage itself (a presigned S3 URL).
        case redirect(BlobRecord, url: String)

        package var blob: BlobRecord {
            switch self {
            case .stream(let blob), .redirect(let blob, _): blob
            }
        }
    }

    /// The blob `digest` of `repository` and how to serve it; nil when the repository does not
    /// link it.
    ///
    /// The storage is asked for a redirect on every GET, although its answer is fixed by
    /// configuration: that call is also what turns an unreachable blob service into a 503 before
    /// a response starts. Skipping it (one internal call less, #17) needs the read to begin before
    /// the headers are sent, so that a failing read can still answer 503 instead of a cut body.
    package func pull(_ digest: Digest, in repository: RepositoryName, redirect wanted: Bool = true) async throws -> PullAnswer? {
        guard let blob = try await self.metadata.blob(digest, in: repository) else { return nil }
        guard wanted, let url = try await self.blobs.externalURL(for: blob) else { return .stream(blob) }
        return .redirect(blob, url: url)
    }
}
