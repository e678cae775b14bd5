import Contracts
import Foundation
import NIOCore
import Runtime
import Synchronization
import Testing
import TestSupport

@testable import Blob

/// A committed blob never changes, whichever replica a racing write goes through; locations and
/// sessions from callers are bounded. Run on the filesystem and on S3 (moto, signatures on).
@Suite struct CommittedBlobTests {
    let repository = RepositoryName("team/app")!
    typealias F = StorageFixture

    /// Attack 3 of the hardening issue: request A opens an append through replica 1, sends a byte and
    /// stalls; request B appends X to the same session through replica 2 and commits it as
    /// sha256(X); then A sends the rest. Before the fix A's bytes landed in the committed blob
    /// (filesystem: the renamed file; S3: the tail object that was the blob). Now either B is refused
    /// while A writes, or A fails; whatever was committed reads back as exactly its digest.
    @Test(arguments: StorageBackend.allCases, [7, F.partSize + 4321])
    func aStalledAppendNeverReachesACommittedBlob(_ backend: StorageBackend, size: Int) async throws {
        try await F.with(backend) { storage in
            let first = storage.service
            let second = try await storage.replica()
            let session = try await first.startUpload(for: self.repository, algorithm: .sha256)
            let gate = Gate()
            let stalled = Task {
                try await first.appendUpload(
                    session.id, for: self.repository, at: 0,
                    body: GatedBody(first: ByteBuffer(string: "A"), rest: [F.pattern(F.partSize + 99, from: 3)], gate: gate)
                )
            }
            await gate.reached()
            let bytes = F.pattern(size, from: 11)
            let digest = DigestHasher.digest(of: bytes)
            var committed: BlobRecord?
            do {
                _ = try await second.appendUpload(session.id, for: self.repository, at: 0, body: F.stream([bytes]))
                committed = try await second.commitUpload(session.id, for: self.repository, digest: digest)
            } catch let error as RegistryError {
                #expect(error.status == 409, "\(error)")
            }
            gate.open()
            let stalledResult = await stalled.result
            if let committed {
                // B won: A must have failed, and the blob is X.
                #expect(throws: (any Error).self) { try stalledResult.get() }
                let stored = try await F.readAll(first, committed)
                #expect(stored == bytes)
                #expect(DigestHasher.digest(of: stored) == digest)
            } else {
                // A held the session (filesystem lock): its bytes are the upload's, B changed nothing.
                let status = try stalledResult.get()
                #expect(status.offset == Int64(1 + F.partSize + 99))
            }
            // Nothing can be appended to a committed session afterwards.
            if committed != nil {
                await #expect(throws: RegistryError.self) {
                    try await first.appendUpload(session.id, for: self.repository, at: nil, body: F.stream(["late"]))
                }
            }
        }
    }

    /// A commit seals the session first: an append arriving after the seal (through any replica)
    /// is refused, and a second commit of one session is refused rather than run twice.
    @Test(arguments: StorageBackend.allCases)
    func appendsAfterTheSealAreRefused(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let other = try await storage.replica()
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: F.stream(["sealed bytes"]))
            let blob = try await service.commitUpload(
                session.id, for: self.repository, digest: DigestHasher.digest(of: ByteBuffer(string: "sealed bytes"))
            )
            for replica in [service, other] {
                await #expect(throws: RegistryError.self) {
                    try await replica.appendUpload(session.id, for: self.repository, at: 12, body: F.stream(["more"]))
                }
                await #expect(throws: RegistryError.self) {
                    try await replica.commitUpload(
                        session.id, for: self.repository, digest: DigestHasher.digest(of: ByteBuffer(string: "sealed bytes"))
                    )
                }
            }
            #expect(String(buffer: try await F.readAll(other, blob)) == "sealed bytes")
            #expect(try await storage.uploadLeftovers().isEmpty)
        }
    }

    /// The internal API takes locations from callers: only the driver's own layout is read or
    /// deleted, so `../` cannot leave the storage (400 `BLOB_UNKNOWN`).
    @Test(arguments: StorageBackend.allCases)
    func locationsOutsideTheLayoutAreRefused(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let digest = DigestHasher.digest(of: ByteBuffer(string: "x"))
            for location in [
                "../../etc/passwd", "/etc/passwd", "blobs/../../x", "blobs/sha256/../../../etc/passwd",
                "uploads/\(UUID().uuidString.lowercased())/data", "blobs/sha256/ab/\(digest.hex)", "",
            ] {
                let blob = BlobRecord(digest: digest, size: 1, location: location)
                for attempt in 0..<3 {
                    do {
                        switch attempt {
                        case 0: _ = try await F.readAll(service, blob)
                        case 1: try await service.discard(blob)
                        default: _ = try await service.externalURL(for: blob)
                        }
                        Issue.record("\(location) was accepted (\(attempt))")
                    } catch let error as RegistryError {
                        #expect(error.status == 400, "\(location): \(error)")
                    }
                }
            }
        }
    }

    /// A read serves exactly the bytes its record names, whatever the file holds: the answer's
    /// Content-Length comes from the record.
    @Test(arguments: StorageBackend.allCases)
    func readsServeExactlyTheRecordedSize(_ backend: StorageBackend) async throws {
        try await F.with(backend) { storage in
            let service = storage.service
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: F.stream(["0123456789"]))
            var blob = try await service.commitUpload(
                session.id, for: self.repository, digest: DigestHasher.digest(of: ByteBuffer(string: "0123456789"))
            )
            blob.size = 4
            #expect(String(buffer: try await F.readAll(service, blob)) == "0123")
            blob.size = 0
            #expect(try await F.readAll(service, blob).readableBytes == 0)
            // A range outside the recorded size is refused before the storage is asked.
            blob.size = 10
            for range: ClosedRange<Int64> in [5...10, -1...3, 0...Int64.max] {
                do {
                    _ = try await F.readAll(service, blob, range: range)
                    Issue.record("range \(range) was read")
                } catch let error as RegistryError {
                    #expect(error.status == 416)
                }
            }
        }
    }

    /// One client may hold `UPLOAD_SESSIONS_PER_CLIENT` open sessions; beyond that 429, while
    /// others still open theirs; ending a session makes room again.
    @Test func openSessionsPerClientAreBounded() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-quota-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let service = try await BlobService.filesystem(directory: directory.path, sessionsPerClient: 3, logger: F.logger)
        var sessions: [UploadStatus] = []
        for _ in 0..<3 {
            sessions.append(try await service.startUpload(for: self.repository, algorithm: .sha256, owner: "uid:ci"))
        }
        do {
            _ = try await service.startUpload(for: self.repository, algorithm: .sha256, owner: "uid:ci")
            Issue.record("a fourth session was opened")
        } catch let error as RegistryError {
            #expect(error.code == .tooManyRequests)
            #expect(error.status == 429)
        }
        _ = try await service.startUpload(for: self.repository, algorithm: .sha256, owner: "uid:someone-else")
        try await service.cancelUpload(sessions[0].id, for: self.repository)
        _ = try await service.startUpload(for: self.repository, algorithm: .sha256, owner: "uid:ci")
    }

    /// The start-up probe: moto (like AWS S3 and MinIO) refuses a PutObject whose If-Match names
    /// another ETag, which the session compare-and-swap relies on.
    @Test func s3ConditionalWritesAreHonoured() async throws {
        let moto = try await MotoServer.shared()
        let client = F.client(moto)
        let probe = "probe-\(UUID())"
        #expect(try await client.honoursConditionalWrites(probe: probe))
        #expect(try await client.headObject(probe) == nil, "the probe is removed")
    }

    /// Sessions ended through another replica are found gone when the client is at its limit, at
    /// most once per prune interval.
    @Test func theQuotaForgetsSessionsEndedElsewhere() {
        let quota = UploadQuota(limit: 2, pruneInterval: .seconds(10))
        let ids = (0..<3).map { _ in UploadID(UUID().uuidString.lowercased())! }
        #expect(quota.open(ids[0], owner: "a"))
        #expect(quota.open(ids[1], owner: "a"))
        #expect(!quota.open(ids[2], owner: "a"))
        let now = ContinuousClock.now
        #expect(Set(quota.sessionsToCheck(of: "a", now: now) ?? []) == Set(ids[0...1]))
        #expect(quota.sessionsToCheck(of: "a", now: now + .seconds(1)) == nil)
        quota.ended(ids[0])
        #expect(quota.open(ids[2], owner: "a"))
        #expect(quota.count(of: "a") == 2)
        #expect(quota.sessionsToCheck(of: "a", now: now + .seconds(11)) != nil)
    }
}

/// A one-shot signal in each direction between a test and a request body.
final class Gate: Sendable {
    private let state = Mutex<(reached: Bool, open: Bool, waiters: [CheckedContinuation<Void, Never>], openers: [CheckedContinuation<Void, Never>])>(
        (false, false, [], [])
    )

    /// Waits until the body reached the gate.
    func reached() async {
        await withCheckedContinuation { continuation in
            let resume = self.state.withLock { state in
                if state.reached { return true }
                state.waiters.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    /// Called by the body: announces it is at the gate, then waits for `open`.
    func arrive() async {
        let waiters = self.state.withLock { state in
            state.reached = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
        await withCheckedContinuation { continuation in
            let resume = self.state.withLock { state in
                if state.open { return true }
                state.openers.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    func open() {
        let openers = self.state.withLock { state in
            state.open = true
            defer { state.openers = [] }
            return state.openers
        }
        for opener in openers { opener.resume() }
    }
}

/// A request body that delivers its first chunk, then stalls at `gate` before the rest.
struct GatedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let first: ByteBuffer
    let rest: [ByteBuffer]
    let gate: Gate

    struct AsyncIterator: AsyncIteratorProtocol {
        var pending: [ByteBuffer]
        var delivered = 0
        let gate: Gate

        mutating func next() async throws -> ByteBuffer? {
            if self.delivered == 1 { await self.gate.arrive() }
            guard !self.pending.isEmpty else { return nil }
            self.delivered += 1
            return self.pending.removeFirst()
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(pending: [self.first] + self.rest, gate: self.gate)
    }
}
