import Contracts
import Crypto
import Foundation
import NIOCore
import Synchronization

/// `BlobAPI` in memory, for tests of the Registry layer and the gateway's handlers: upload
/// sessions that hash what they receive, committed blobs under locations of their own (two uploads
/// of one digest are two locations, as on S3), ranged reads in chunks. Faults can be switched on:
/// a storage that cannot be read, a storage that redirects. Every call is counted by name.
package final class InMemoryBlobs: BlobAPI {
    private struct Session {
        var repository: RepositoryName
        var algorithm: Contracts.Digest.Algorithm
        var bytes = ByteBuffer()
    }

    private struct State {
        var sessions: [UploadID: Session] = [:]
        var stored: [String: ByteBuffer] = [:]
        var calls: [String: Int] = [:]
        var readFailure: RegistryError?
        var readsStall = false
        var redirectBase: String?
        var discardsHeld = false
        var readsHeld = false
    }

    private let state = Mutex(State())
    /// Size of the chunks a read hands to its sink.
    package let chunkSize: Int

    package init(chunkSize: Int = 4) {
        self.chunkSize = chunkSize
    }

    /// How often `operation` (a method's base name) was called.
    package func count(_ operation: String) -> Int { self.state.withLock { $0.calls[operation] ?? 0 } }
    /// Locations holding bytes.
    package var storedLocations: Set<String> { self.state.withLock { Set($0.stored.keys) } }
    /// Makes every read fail with `error` before its first byte (nil: reads work).
    package func failReads(with error: RegistryError?) { self.state.withLock { $0.readFailure = error } }
    /// Makes every read wait (until its task is cancelled) before its first byte.
    package func stallReads(_ stall: Bool) { self.state.withLock { $0.readsStall = stall } }
    /// Makes every read wait before its first byte until this is switched off again (it is counted
    /// when it starts; a cancelled one throws).
    package func holdReads(_ hold: Bool) { self.state.withLock { $0.readsHeld = hold } }
    /// Makes every `discard` wait until this is switched off again (it is counted when it starts).
    package func holdDiscards(_ hold: Bool) { self.state.withLock { $0.discardsHeld = hold } }
    /// Makes `externalURL` answer `base` + location (nil: no redirects).
    package func redirect(to base: String?) { self.state.withLock { $0.redirectBase = base } }

    private func called<T>(_ operation: String, _ body: (inout State) throws -> T) rethrows -> T {
        try self.state.withLock { state in
            state.calls[operation, default: 0] += 1
            return try body(&state)
        }
    }

    private static func session(_ id: UploadID, _ repository: RepositoryName, in state: State) throws -> Session {
        guard let session = state.sessions[id], session.repository == repository else {
            throw RegistryError(.blobUploadUnknown, "upload \(id) is not known")
        }
        return session
    }

    package func startUpload(for repository: RepositoryName, algorithm: Contracts.Digest.Algorithm, owner: String) async throws
        -> UploadStatus
    {
        self.called("startUpload") { state in
            let id = UploadID(UUID().uuidString.lowercased())!
            state.sessions[id] = Session(repository: repository, algorithm: algorithm)
            return UploadStatus(id: id, repository: repository, offset: 0)
        }
    }

    package func uploadStatus(_ id: UploadID, for repository: RepositoryName) async throws -> UploadStatus {
        try self.called("uploadStatus") { state in
            let session = try Self.session(id, repository, in: state)
            return UploadStatus(id: id, repository: repository, offset: Int64(session.bytes.readableBytes))
        }
    }

    package func appendUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, for repository: RepositoryName, at offset: Int64?, body: Body
    ) async throws -> UploadStatus where Body.Element == ByteBuffer {
        var received = ByteBuffer()
        for try await chunk in body { received.writeImmutableBuffer(chunk) }
        let bytes = received
        return try self.called("appendUpload") { state in
            var session = try Self.session(id, repository, in: state)
            if let offset, offset != Int64(session.bytes.readableBytes) {
                throw RegistryError.rangeNotSatisfiable("chunk starts at \(offset)", offset: Int64(session.bytes.readableBytes))
            }
            session.bytes.writeImmutableBuffer(bytes)
            state.sessions[id] = session
            return UploadStatus(id: id, repository: repository, offset: Int64(session.bytes.readableBytes))
        }
    }

    package func commitUpload(_ id: UploadID, for repository: RepositoryName, digest: Contracts.Digest) async throws -> BlobRecord {
        try self.called("commitUpload") { state in
            let session = try Self.session(id, repository, in: state)
            state.sessions[id] = nil
            let bytes = Array(session.bytes.readableBytesView)
            let hex = switch session.algorithm {
            case .sha256: SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            case .sha512: SHA512.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            }
            guard digest.description == "\(session.algorithm.rawValue):\(hex)" else {
                throw RegistryError(.digestInvalid, "the upload's digest is \(session.algorithm.rawValue):\(hex)")
            }
            let location = "blobs/\(UUID().uuidString.lowercased())"
            state.stored[location] = session.bytes
            return BlobRecord(digest: digest, size: Int64(bytes.count), location: location)
        }
    }

    package func cancelUpload(_ id: UploadID, for repository: RepositoryName) async throws {
        try self.called("cancelUpload") { state in
            _ = try Self.session(id, repository, in: state)
            state.sessions[id] = nil
        }
    }

    package func read(
        _ blob: BlobRecord, range: ClosedRange<Int64>?, into sink: (ByteBuffer) async throws -> Void
    ) async throws {
        let (bytes, stall) = try self.called("read") { state -> (ByteBuffer, Bool) in
            if let failure = state.readFailure { throw failure }
            guard let bytes = state.stored[blob.location] else { throw RegistryError(.blobUnknown) }
            return (bytes, state.readsStall)
        }
        if stall { try await Task.sleep(for: .seconds(3600)) }
        while self.state.withLock({ $0.readsHeld }) {
            try await Task.sleep(for: .milliseconds(1))
        }
        guard bytes.readableBytes > 0 else { return }
        let range = range ?? 0...(Int64(bytes.readableBytes) - 1)
        var offset = Int(range.lowerBound)
        while offset <= Int(range.upperBound) {
            let length = min(self.chunkSize, Int(range.upperBound) - offset + 1)
            try await sink(bytes.getSlice(at: bytes.readerIndex + offset, length: length)!)
            offset += length
        }
    }

    package func discard(locations: [String]) async throws -> [String] {
        self.called("discardAll") { state in
            for location in locations { state.stored[location] = nil }
            return locations
        }
    }

    package func storedBlobs(after location: String?, limit: Int) async throws -> StoredBlobPage {
        self.called("storedBlobs") { state in
            let items = state.stored.keys.sorted().filter { stored in location.map { stored > $0 } ?? true }
                .map { StoredBlob(location: $0, size: Int64(state.stored[$0]?.readableBytes ?? 0), modifiedMillis: 0) }
            return StoredBlobPage(items: Array(items.prefix(limit)), next: items.count > limit ? items[limit - 1].location : nil)
        }
    }

    package func discard(_ blob: BlobRecord) async throws {
        self.called("discard") { _ in }
        while self.state.withLock({ $0.discardsHeld }) {
            try await Task.sleep(for: .milliseconds(1))
        }
        self.state.withLock { state in state.stored[blob.location] = nil }
    }

    package func externalURL(for blob: BlobRecord) async throws -> String? {
        self.called("externalURL") { state in state.redirectBase.map { $0 + blob.location } }
    }
}
