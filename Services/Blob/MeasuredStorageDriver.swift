import Contracts
import NIOCore
import Prometheus
import Runtime

/// A storage driver that records the time (and failures) of every operation of another one,
/// as `pierone_storage_operation_duration_seconds{driver, operation}`.
struct MeasuredStorageDriver: StorageDriver {
    let base: any StorageDriver
    let name: String

    private func measure<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        do {
            let result = try await body()
            ServiceMetrics.storageDuration(driver: self.name, operation: operation).record(ContinuousClock.now - start)
            return result
        } catch {
            ServiceMetrics.storageDuration(driver: self.name, operation: operation).record(ContinuousClock.now - start)
            ServiceMetrics.storageErrors(driver: self.name, operation: operation).increment()
            throw error
        }
    }

    func createUpload(_ id: UploadID, info: UploadInfo) async throws {
        try await self.measure("create_upload") { try await self.base.createUpload(id, info: info) }
    }

    func upload(_ id: UploadID) async throws -> (info: UploadInfo, size: Int64)? {
        try await self.measure("upload_status") { try await self.base.upload(id) }
    }

    func appendUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, at offset: Int64, body: Body, observe: (ByteBuffer) -> Void,
        digestState: (Int64) -> SavedHashState?
    ) async throws -> Int64 where Body.Element == ByteBuffer {
        try await self.measure("append_upload") {
            try await self.base.appendUpload(id, at: offset, body: body, observe: observe, digestState: digestState)
        }
    }

    func appendAndSeal<Body: AsyncSequence & Sendable>(
        _ id: UploadID, at offset: Int64, body: Body, observe: (ByteBuffer) -> Void
    ) async throws -> (size: Int64, digest: SavedHashState?) where Body.Element == ByteBuffer {
        try await self.measure("append_and_seal") { try await self.base.appendAndSeal(id, at: offset, body: body, observe: observe) }
    }

    func sealUpload(_ id: UploadID) async throws -> (size: Int64, digest: SavedHashState?) {
        try await self.measure("seal_upload") { try await self.base.sealUpload(id) }
    }

    func readUpload(_ id: UploadID, into sink: (ByteBuffer) async throws -> Void) async throws {
        try await self.measure("read_upload") { try await self.base.readUpload(id, into: sink) }
    }

    func commitUpload(_ id: UploadID, as digest: Digest) async throws -> String {
        try await self.measure("commit_upload") { try await self.base.commitUpload(id, as: digest) }
    }

    func loadHashState(_ id: UploadID) async throws -> SavedHashState? {
        try await self.measure("load_hash_state") { try await self.base.loadHashState(id) }
    }

    func abortUpload(_ id: UploadID, evenIfSealed: Bool) async throws {
        try await self.measure("abort_upload") { try await self.base.abortUpload(id, evenIfSealed: evenIfSealed) }
    }

    func isReachable() async -> Bool {
        await self.base.isReachable()
    }

    func isOwnLocation(_ location: String) -> Bool {
        self.base.isOwnLocation(location)
    }

    func listUploads() async throws -> [(id: UploadID, startedAt: Double)] {
        try await self.measure("list_uploads") { try await self.base.listUploads() }
    }

    func read(location: String, range: ClosedRange<Int64>?, into sink: (ByteBuffer) async throws -> Void) async throws {
        try await self.measure("read") { try await self.base.read(location: location, range: range, into: sink) }
    }

    func deleteBlob(location: String) async throws {
        try await self.measure("delete_blob") { try await self.base.deleteBlob(location: location) }
    }

    func listBlobs(after location: String?, limit: Int) async throws -> (blobs: [StoredBlob], next: String?) {
        try await self.measure("list_blobs") { try await self.base.listBlobs(after: location, limit: limit) }
    }

    func deleteBlobs(locations: [String]) async throws -> Set<String> {
        try await self.measure("delete_blobs") { try await self.base.deleteBlobs(locations: locations) }
    }

    func externalURL(location: String) async throws -> String? {
        try await self.measure("external_url") { try await self.base.externalURL(location: location) }
    }

    func collectGarbage(olderThan cutoff: Double) async throws -> Int {
        try await self.measure("collect_garbage") { try await self.base.collectGarbage(olderThan: cutoff) }
    }
}
