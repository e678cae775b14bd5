import AsyncHTTPClient
import Contracts
import Logging
import NIOCore
import Prometheus
import Runtime
import SystemPackage

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The blob service: upload sessions with streaming digests over a storage driver.
package struct BlobService: BlobAPI {
    private let driver: any StorageDriver
    private let claims = UploadClaims()
    private let quota: UploadQuota
    private let logger: Logger

    /// Default of `UPLOAD_SESSIONS_PER_CLIENT`.
    package static let defaultSessionsPerClient = 1000

    init(driver: any StorageDriver, sessionsPerClient: Int = BlobService.defaultSessionsPerClient, logger: Logger) {
        self.driver = driver
        self.quota = UploadQuota(limit: sessionsPerClient)
        self.logger = logger
    }

    /// A blob service on the filesystem under `directory`, creating its layout.
    package static func filesystem(
        directory: String, sessionsPerClient: Int = BlobService.defaultSessionsPerClient, logger: Logger
    ) async throws -> BlobService {
        let driver = FilesystemDriver(root: .init(directory))
        try await driver.prepare()
        return BlobService(
            driver: MeasuredStorageDriver(base: driver, name: "filesystem"), sessionsPerClient: sessionsPerClient, logger: logger
        )
    }

    /// A blob service on S3, after checking that the bucket answers with the configured
    /// credentials; a failure names the setting to fix (`ConfigurationError`).
    package static func s3(
        settings: S3Settings, http: HTTPClient? = nil, sessionsPerClient: Int = BlobService.defaultSessionsPerClient,
        logger: Logger
    ) async throws -> BlobService {
        let http = http ?? S3Client.sharedHTTPClient
        let provider = AWSCredentialsProvider(source: settings.credentials, http: http)
        let client = S3Client(endpoint: settings.endpoint, bucket: settings.bucket, region: settings.region, http: http) {
            try await provider.credentials()
        }
        do {
            try await client.headBucket()
        } catch let failure as AWSCredentialsProvider.Failure {
            throw ConfigurationError(settings.credentialSettings, "no AWS credentials: \(failure)")
        } catch let failure as S3Client.Failure {
            switch failure.status {
            case 403:
                throw ConfigurationError(
                    settings.credentialSettings,
                    "S3 refused access to bucket \(settings.bucket) (403 \(failure.code)): wrong secret key or no permission"
                )
            case 404:
                throw ConfigurationError(
                    "STORAGE_S3_BUCKET", "bucket \(settings.bucket) does not exist at \(settings.endpoint)"
                )
            case 301, 400:
                throw ConfigurationError(
                    "AWS_REGION", "bucket \(settings.bucket) is not in \(settings.region) (S3 answered \(failure.status))"
                )
            default:
                throw ConfigurationError("STORAGE_S3_ENDPOINT", "\(settings.endpoint) answered \(failure)")
            }
        } catch {
            throw ConfigurationError("STORAGE_S3_ENDPOINT", "cannot reach \(settings.endpoint): \(error)")
        }
        let conditional: Bool
        do {
            // A key of this process's own: replicas start at once.
            conditional = try await client.honoursConditionalWrites(
                probe: settings.prefix + "uploads/.conditional-write-probe-\(UUID().uuidString.lowercased())"
            )
        } catch {
            throw ConfigurationError(settings.credentialSettings, "cannot write to bucket \(settings.bucket): \(error)")
        }
        if !conditional {
            logger.warning(
                """
                the S3 server ignores If-Match on PutObject: two requests writing one upload session through \
                different blob replicas are not refused; use a server with conditional writes (AWS S3, MinIO) \
                or run one blob replica
                """,
                metadata: ["endpoint": "\(settings.endpoint)"]
            )
        }
        logger.info(
            "blobs in S3",
            metadata: [
                "endpoint": "\(settings.endpoint)", "bucket": "\(settings.bucket)", "prefix": "\(settings.prefix)",
                "partSize": "\(settings.partSize)", "externalStore": "\(settings.externalStore)",
            ]
        )
        return BlobService(
            driver: MeasuredStorageDriver(base: S3StorageDriver(client: client, settings: settings), name: "s3"),
            sessionsPerClient: sessionsPerClient, logger: logger
        )
    }

    /// Whether the storage can be reached.
    package func isReady() async -> Bool {
        await self.driver.isReachable()
    }

    package func startUpload(
        for repository: RepositoryName, algorithm: Digest.Algorithm, owner: String
    ) async throws -> UploadStatus {
        let id = UploadID(UUID().uuidString.lowercased())!
        if !self.quota.open(id, owner: owner) {
            // At the limit: sessions ended through other replicas may still be counted here.
            if let tracked = self.quota.sessionsToCheck(of: owner) {
                for session in tracked where try await self.driver.upload(session) == nil {
                    self.quota.ended(session)
                }
            }
            guard self.quota.open(id, owner: owner) else {
                throw RegistryError(
                    .tooManyRequests,
                    "\(self.quota.limit) upload sessions are open for this client; finish or cancel some, or wait for them to expire",
                    detail: ["limit": String(self.quota.limit), "retryAfter": String(self.quota.pruneInterval.components.seconds)]
                )
            }
        }
        let info = UploadInfo(repository: repository, algorithm: algorithm, startedAt: Date().timeIntervalSince1970)
        do {
            try await self.driver.createUpload(id, info: info)
        } catch {
            self.quota.ended(id)
            throw error
        }
        ServiceMetrics.uploadSessionsOpen.increment()
        return UploadStatus(id: id, repository: repository, offset: 0)
    }

    /// Bookkeeping of a session that was committed, cancelled or refused at commit.
    private func sessionEnded(_ id: UploadID) {
        ServiceMetrics.uploadSessionsOpen.decrement()
        self.quota.ended(id)
    }

    package func uploadStatus(_ id: UploadID, for repository: RepositoryName) async throws -> UploadStatus {
        let upload = try await self.existingUpload(id, for: repository)
        return UploadStatus(id: id, repository: repository, offset: upload.size)
    }

    package func appendUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, for repository: RepositoryName, at offset: Int64?, body: Body
    ) async throws -> UploadStatus where Body.Element == ByteBuffer {
        try await self.claimed(id, for: repository, at: offset) { upload in
            // Continue the digest where the upload stands, whichever replica hashed the bytes so far.
            var hasher = try await self.savedHasher(id, size: upload.size, algorithm: upload.info.algorithm)
            let size = try await self.driver.appendUpload(
                id, at: upload.size, body: body, observe: { chunk in hasher?.update(chunk) },
                digestState: { size in hasher.map { SavedHashState(offset: size, algorithm: $0.algorithm, state: $0.state) } }
            )
            return UploadStatus(id: id, repository: repository, offset: size)
        }
    }

    package func commitUpload(_ id: UploadID, for repository: RepositoryName, digest: Digest) async throws -> BlobRecord {
        try await self.claimed(id, for: repository) { _ in
            try await self.verifyAndPlace(id, as: digest, sealed: try await self.driver.sealUpload(id), hashed: nil)
        }
    }

    /// The closing request with its last chunk: one session check and one claim for the append and
    /// the commit, and the digest of the appended bytes goes from the append to the commit in
    /// memory instead of through storage (no digest state is written or read back).
    package func commitUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, for repository: RepositoryName, digest: Digest, appending body: Body, at offset: Int64?
    ) async throws -> BlobRecord where Body.Element == ByteBuffer {
        try await self.claimed(id, for: repository, at: offset) { upload in
            var hasher = try await self.savedHasher(id, size: upload.size, algorithm: upload.info.algorithm)
            var appended = upload.size
            let sealed = try await self.driver.appendAndSeal(id, at: upload.size, body: body) { chunk in
                hasher?.update(chunk)
                appended += Int64(chunk.readableBytes)
            }
            return try await self.verifyAndPlace(id, as: digest, sealed: sealed, hashed: hasher.map { (appended, $0) })
        }
    }

    /// Runs `body` on the session `id` of `repository` (checked to exist, and to stand at `offset`
    /// when one is given) holding its claim, released however `body` ends.
    private func claimed<T: Sendable>(
        _ id: UploadID, for repository: RepositoryName, at offset: Int64? = nil,
        _ body: ((info: UploadInfo, size: Int64)) async throws -> T
    ) async throws -> T {
        let upload = try await self.existingUpload(id, for: repository)
        if let offset, offset != upload.size {
            throw RegistryError.rangeNotSatisfiable(
                "chunk starts at \(offset) but the upload has \(upload.size) bytes", offset: upload.size
            )
        }
        try await self.claims.claim(id)
        do {
            let result = try await body(upload)
            await self.claims.release(id)
            return result
        } catch {
            await self.claims.release(id)
            throw error
        }
    }

    /// Verifies `digest` on a sealed session (from the seal on no append on any replica can change
    /// its bytes: what is hashed is what is placed) and places the blob; the caller holds the
    /// claim. `hashed`: the digest state of the session's first `size` bytes, when the caller has it.
    private func verifyAndPlace(
        _ id: UploadID, as digest: Digest, sealed: (size: Int64, digest: SavedHashState?),
        hashed: (size: Int64, hasher: ResumableHasher)?
    ) async throws -> BlobRecord {
        var hasher: ResumableHasher
        if sealed.size == 0 {
            hasher = ResumableHasher(digest.algorithm)
        } else if let hashed, hashed.size == sealed.size, hashed.hasher.algorithm == digest.algorithm {
            hasher = hashed.hasher
        } else if let saved = sealed.digest, saved.offset == sealed.size, saved.algorithm == digest.algorithm,
                  let resumed = ResumableHasher(algorithm: digest.algorithm, state: saved.state)
        {
            hasher = resumed
        } else {
            // No usable state (a write failed midway, another replica appended meanwhile, or the
            // digest uses another algorithm than the session was opened with): hash the sealed bytes.
            hasher = ResumableHasher(digest.algorithm)
            try await self.driver.readUpload(id) { chunk in hasher.update(chunk) }
        }
        let actual = hasher.finalize()
        guard actual == digest else {
            try await self.driver.abortUpload(id, evenIfSealed: true)
            self.sessionEnded(id)
            throw RegistryError(
                .digestInvalid, "upload digest \(actual) does not match \(digest)",
                detail: ["expected": digest.description, "actual": actual.description]
            )
        }
        let location = try await self.driver.commitUpload(id, as: digest)
        self.sessionEnded(id)
        return BlobRecord(digest: digest, size: sealed.size, location: location)
    }

    /// The digest state after the upload's `size` stored bytes: a fresh one for an empty upload, the
    /// saved one when it covers exactly those bytes, nil otherwise.
    private func savedHasher(_ id: UploadID, size: Int64, algorithm: Digest.Algorithm) async throws -> ResumableHasher? {
        if size == 0 { return ResumableHasher(algorithm) }
        guard let saved = try await self.driver.loadHashState(id), saved.offset == size, saved.algorithm == algorithm
        else { return nil }
        return ResumableHasher(algorithm: algorithm, state: saved.state)
    }

    package func cancelUpload(_ id: UploadID, for repository: RepositoryName) async throws {
        try await self.claimed(id, for: repository) { _ in
            try await self.driver.abortUpload(id, evenIfSealed: false)
            self.sessionEnded(id)
        }
    }

    package func read(
        _ blob: BlobRecord, range: ClosedRange<Int64>?, into sink: (ByteBuffer) async throws -> Void
    ) async throws {
        try self.checkLocation(blob)
        if let range, range.lowerBound < 0 || range.upperBound >= blob.size {
            throw RegistryError(.rangeNotSatisfiable, "range \(range) is outside the blob's \(blob.size) bytes")
        }
        // Exactly the bytes the record names: the answer's Content-Length comes from it, and a
        // longer file must not spill into the next response on a kept-alive connection.
        guard blob.size > 0 else { return }
        try await self.driver.read(location: blob.location, range: range ?? 0...(blob.size - 1), into: sink)
    }

    /// Locations come from callers of the internal API: only this storage's own layout names a file.
    package func checkLocation(_ blob: BlobRecord) throws(RegistryError) {
        guard self.driver.isOwnLocation(blob.location) else {
            throw RegistryError(
                .blobLocationInvalid, "\(blob.location) is not a blob location of this storage",
                detail: ["digest": blob.digest.description]
            )
        }
    }

    package func discard(_ blob: BlobRecord) async throws {
        try self.checkLocation(blob)
        try await self.driver.deleteBlob(location: blob.location)
        self.logger.debug("discarded a duplicate upload", metadata: ["digest": "\(blob.digest)", "location": "\(blob.location)"])
    }

    /// Deletes the bytes of many blobs metadata no longer records (the garbage collector's
    /// batches); the locations deleted. A location that is not this storage's is skipped.
    package func discard(locations: [String]) async throws -> [String] {
        let own = Set(locations.filter { self.driver.isOwnLocation($0) })
        return Array(try await self.driver.deleteBlobs(locations: Array(own))).sorted()
    }

    package func storedBlobs(after location: String?, limit: Int) async throws -> StoredBlobPage {
        let listed = try await self.driver.listBlobs(after: location, limit: min(max(1, limit), 1000))
        return StoredBlobPage(items: listed.blobs, next: listed.next)
    }

    package func externalURL(for blob: BlobRecord) async throws -> String? {
        try self.checkLocation(blob)
        return try await self.driver.externalURL(location: blob.location)
    }

    /// Removes sessions opened longer than `maximumAge` seconds ago, with their bytes.
    package func expireUploads(olderThan maximumAge: Double) async throws -> Int {
        let cutoff = Date().timeIntervalSince1970 - maximumAge
        var removed = 0
        let uploads = try await self.driver.listUploads()
        for upload in uploads where upload.startedAt < cutoff {
            guard await self.claims.claimIfIdle(upload.id) else { continue }
            // Older than any commit could take: a sealed session here is one whose commit died.
            try? await self.driver.abortUpload(upload.id, evenIfSealed: true)
            self.quota.ended(upload.id)
            await self.claims.release(upload.id)
            removed += 1
        }
        // The sessions on storage (every replica's): corrects what this process counted since.
        ServiceMetrics.uploadSessionsOpen.set(Double(uploads.count - removed))
        let leftovers = try await self.driver.collectGarbage(olderThan: cutoff)
        if removed + leftovers > 0 {
            self.logger.info("expired abandoned uploads", metadata: ["count": "\(removed)", "leftovers": "\(leftovers)"])
        }
        return removed
    }

    private func existingUpload(
        _ id: UploadID, for repository: RepositoryName
    ) async throws -> (info: UploadInfo, size: Int64) {
        guard let upload = try await self.driver.upload(id), upload.info.repository == repository else {
            throw RegistryError(.blobUploadUnknown, "upload \(id) does not exist in \(repository)")
        }
        return upload
    }
}
