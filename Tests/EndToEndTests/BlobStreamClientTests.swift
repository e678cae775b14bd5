import AsyncHTTPClient
import Contracts
import Foundation
import Hummingbird
import HummingbirdTesting
import InternalClients
import NIOCore
import Runtime
import Synchronization
import Testing

/// The gateway's reads of large blobs from the blob service, on connections of their own
/// (`BlobStreamClient`), against a real HTTP server standing in for the blob service's read route.
@Suite struct BlobStreamClientTests {
    static let size = Int(BlobStreamClient.minimumSize) + 3 * 100_003
    static let bytes = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) })
    static let digest = DigestHasher.digest(of: bytes)

    /// A read route answering `bytes` (or its range) in odd-sized chunks, a JSON error for an
    /// unknown location, and counting the requests it gets.
    final class Count: Sendable {
        let value = Mutex(0)
        var current: Int { self.value.withLock { $0 } }
    }

    static func withBlobService(_ body: @escaping @Sendable (String, Count) async throws -> Void) async throws {
        let requests = Count()
        let router = Router()
        router.add(middleware: InternalErrorMiddleware())
        router.get(RouterPath(InternalBlobPaths.read)) { request, _ -> Response in
            requests.value.withLock { $0 += 1 }
            let query = request.uri.queryParameters
            guard query["location"] == "blobs/known" else { throw RegistryError(.blobUnknown) }
            let start = query["start"].flatMap { Int($0) } ?? 0
            let end = query["end"].flatMap { Int($0) } ?? (Self.size - 1)
            let slice = Self.bytes.getSlice(at: start, length: end - start + 1)!
            return Response(status: .ok, body: ResponseBody(contentLength: slice.readableBytes) { writer in
                var offset = 0
                while offset < slice.readableBytes {
                    let length = min(77_777, slice.readableBytes - offset)
                    try await writer.write(slice.getSlice(at: offset, length: length)!)
                    offset += length
                }
                try await writer.finish(nil)
            })
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await body("http://127.0.0.1:\(client.port ?? 0)", requests)
        }
    }

    static func read(_ blobs: RemoteBlobs, _ record: BlobRecord, _ range: ClosedRange<Int64>? = nil) async throws -> (ByteBuffer, [Int]) {
        var collected = ByteBuffer()
        var sizes: [Int] = []
        try await blobs.read(record, range: range) { chunk in
            sizes.append(chunk.readableBytes)
            collected.writeImmutableBuffer(chunk)
        }
        return (collected, sizes)
    }

    @Test func largeReadsAndRangesArriveWholeInLargeBatches() async throws {
        try await Self.withBlobService { base, requests in
            let streams = try BlobStreamClient(base: base, tls: nil)
            let blobs = RemoteBlobs(url: base, http: HTTPClient.shared, streams: streams)
            let record = BlobRecord(digest: Self.digest, size: Int64(Self.size), location: "blobs/known")
            let (whole, sizes) = try await Self.read(blobs, record)
            #expect(whole == Self.bytes)
            #expect(sizes.dropLast().allSatisfy { $0 >= RemoteBlobs.batchSize }, "batches, not the server's 77,777-byte writes")
            let range: ClosedRange<Int64> = 12_345...(BlobStreamClient.minimumSize + 12_345)
            let (part, _) = try await Self.read(blobs, record, range)
            #expect(part == Self.bytes.getSlice(at: 12_345, length: range.count))
            // A short range goes through the pooled client, with the same bytes.
            let (small, _) = try await Self.read(blobs, record, 5...104)
            #expect(small == Self.bytes.getSlice(at: 5, length: 100))
            #expect(requests.current == 3)
        }
    }

    @Test func theBlobServiceErrorComesBackAsItsRegistryError() async throws {
        try await Self.withBlobService { base, _ in
            let blobs = RemoteBlobs(url: base, http: HTTPClient.shared, streams: try BlobStreamClient(base: base, tls: nil))
            let missing = BlobRecord(digest: Self.digest, size: Int64(Self.size), location: "blobs/gone")
            let error = await #expect(throws: RegistryError.self) { _ = try await Self.read(blobs, missing) }
            #expect(error?.code == .blobUnknown)
            #expect(error?.status == 404)
        }
    }

    @Test func anUnreachableBlobServiceIs503() async throws {
        let port = try await Self.closedPort()
        let base = "http://127.0.0.1:\(port)"
        let blobs = RemoteBlobs(url: base, http: HTTPClient.shared, streams: try BlobStreamClient(base: base, tls: nil))
        let record = BlobRecord(digest: Self.digest, size: Int64(Self.size), location: "blobs/known")
        let error = await #expect(throws: RegistryError.self) { _ = try await Self.read(blobs, record) }
        #expect(error?.status == 503)
    }

    @Test func aBlobURLThatIsNotHTTPNamesTheSetting() {
        #expect(throws: ConfigurationError.self) { try BlobStreamClient(base: "ftp://blob:21", tls: nil) }
    }

    /// A loopback port nothing listens on (bound, then closed).
    static func closedPort() async throws -> Int {
        let router = Router()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in client.port ?? 0 }
    }
}
