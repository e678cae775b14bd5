import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import Runtime
import Synchronization
import TestSupport
import Testing

@testable import Blob

/// The S3 client against moto with signature checking on: Signature V4 as a real S3-compatible
/// server verifies it, object reads and writes, multipart uploads.
@Suite struct S3ClientTests {
    static func withClient(secret: String? = nil, bucket: String? = nil, _ body: (S3Client, MotoServer) async throws -> Void)
        async throws
    {
        let moto = try await MotoServer.shared()
        let credentials = AWSCredentials(accessKeyID: moto.accessKeyID, secretAccessKey: secret ?? moto.secretAccessKey)
        let client = S3Client(endpoint: moto.endpoint, bucket: bucket ?? moto.bucket, region: "us-east-1", http: S3Client.sharedHTTPClient) {
            credentials
        }
        try await body(client, moto)
    }

    static func read(_ client: S3Client, _ key: String, range: ClosedRange<Int64>? = nil) async throws -> ByteBuffer {
        var collected = ByteBuffer()
        try await client.getObject(key, range: range) { chunk in
            var chunk = chunk
            collected.writeBuffer(&chunk)
        }
        return collected
    }

    @Test func objectsRoundTripWithRanges() async throws {
        try await Self.withClient { client, _ in
            try await client.headBucket()
            try await client.putObject("client-test/uploads/plain.json", ByteBuffer(string: "0123456789"))
            #expect(try await Self.read(client, "client-test/uploads/plain.json") == ByteBuffer(string: "0123456789"))
            #expect(try await Self.read(client, "client-test/uploads/plain.json", range: 2...5) == ByteBuffer(string: "2345"))
            try await client.deleteObject("client-test/uploads/plain.json")
            await #expect(throws: S3Client.Failure.self) { _ = try await Self.read(client, "client-test/uploads/plain.json") }
        }
    }

    @Test func multipartUploadsCompleteAndAbort() async throws {
        try await Self.withClient { client, _ in
            let first = ByteBuffer(repeating: 1, count: 5 * 1024 * 1024)
            let last = ByteBuffer(string: "tail")
            let id = try await client.createMultipartUpload("client-test/blobs/data/one")
            let etag1 = try await client.uploadPart("client-test/blobs/data/one", uploadID: id, number: 1, bytes: first)
            let etag2 = try await client.uploadPart("client-test/blobs/data/one", uploadID: id, number: 2, bytes: last)
            #expect(try await client.listMultipartUploads(prefix: "client-test/") == ["client-test/blobs/data/one"])
            try await client.completeMultipartUpload("client-test/blobs/data/one", uploadID: id, parts: [(1, etag1), (2, etag2)])
            let whole = try await Self.read(client, "client-test/blobs/data/one")
            #expect(whole.readableBytes == first.readableBytes + 4)
            #expect(whole.getSlice(at: first.readableBytes, length: 4) == last)
            let abandoned = try await client.createMultipartUpload("client-test/blobs/data/two")
            _ = try await client.uploadPart("client-test/blobs/data/two", uploadID: abandoned, number: 1, bytes: last)
            try await client.abortMultipartUpload("client-test/blobs/data/two", uploadID: abandoned)
            #expect(try await client.listMultipartUploads(prefix: "client-test/").isEmpty)
        }
    }

    @Test func aWrongSecretIsRefused() async throws {
        try await Self.withClient(secret: "not-the-secret") { client, _ in
            do {
                try await client.headBucket()
                Issue.record("a request signed with the wrong secret was accepted")
            } catch let failure as S3Client.Failure {
                #expect(failure.status == 403)
            }
            do {
                try await client.putObject("x", ByteBuffer(string: "x"))
                Issue.record("a request signed with the wrong secret was accepted")
            } catch let failure as S3Client.Failure {
                #expect(failure.code == "SignatureDoesNotMatch")
            }
        }
    }

    @Test func aMissingBucketIsReported() async throws {
        try await Self.withClient(bucket: "no-such-bucket") { client, _ in
            do {
                try await client.headBucket()
                Issue.record("a missing bucket answered")
            } catch let failure as S3Client.Failure {
                #expect(failure.status == 404)
            }
        }
    }

    /// Large reads go through a connection of their own (`StreamingGet`), signed like any request:
    /// whole and ranged reads of a 9 MiB object arrive intact in large batches with the object's
    /// ETag, and moto refuses the read signed with a wrong secret.
    @Test func largeReadsStreamSignedOnAConnectionOfTheirOwn() async throws {
        let size = Int(StreamingGet.minimumSize) + (1 << 20) + 12_345
        let bytes = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) })
        let key = "client-test/blobs/large-\(UUID().uuidString)"
        try await Self.withClient { client, _ in
            let etag = try await client.putObject(key, bytes)
            var sizes: [Int] = []
            var whole = ByteBuffer()
            let answered = try await client.getObject(key, range: 0...Int64(size - 1)) { chunk in
                sizes.append(chunk.readableBytes)
                whole.writeImmutableBuffer(chunk)
            }
            #expect(whole == bytes)
            #expect(answered == etag)
            #expect(sizes.dropLast().allSatisfy { $0 >= S3Client.readBatch })
            let range: ClosedRange<Int64> = 777...(StreamingGet.minimumSize + 777)
            #expect(try await Self.read(client, key, range: range) == bytes.getSlice(at: 777, length: range.count))
        }
        try await Self.withClient(secret: "not-the-secret") { client, _ in
            do {
                _ = try await Self.read(client, key, range: 0...Int64(size - 1))
                Issue.record("a read signed with the wrong secret was answered")
            } catch let failure as S3Client.Failure {
                #expect(failure.status == 403)
                #expect(failure.code == "SignatureDoesNotMatch")
            }
        }
        try await Self.withClient { client, _ in try await client.deleteObject(key) }
    }

    /// What the stand-in S3 does to each GET (after a first answer of `first`, when given).
    enum Fault: Sendable {
        /// The bytes, whole.
        case none
        /// The connection ends after this many bytes.
        case cutAfter(Int)
        /// The head never comes.
        case silence
        /// A 500 whose body never ends.
        case endlessError
        /// The whole object, whatever range was asked for.
        case ignoreRange
    }

    /// A stand-in S3 (a real HTTP server) for the faults moto does not make. It records the
    /// `Connection` header of each GET: large reads come on connections of their own, which
    /// close after the answer.
    static func withFaultyServer(
        first: HTTPResponse.Status? = nil, fault: Fault = .none, bytes: ByteBuffer,
        _ body: @escaping @Sendable (S3Client, @escaping @Sendable () -> [String]) async throws -> Void
    ) async throws {
        let requests = Mutex<[String]>([])
        let all = bytes
        let router = Router()
        router.get("/bucket/**") { request, _ -> Response in
            let number = requests.withLock {
                $0.append(request.headers[.connection] ?? "")
                return $0.count
            }
            if number == 1, let first {
                return Response(status: first, body: ResponseBody(byteBuffer: ByteBuffer(string: "<Error><Code>SlowDown</Code></Error>")))
            }
            switch fault {
            case .silence:
                try await Task.sleep(for: .seconds(3))
            case .endlessError:
                return Response(status: .internalServerError, body: ResponseBody { writer in
                    let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 << 10)
                    while true { try await writer.write(chunk) }
                })
            case .none, .cutAfter, .ignoreRange:
                break
            }
            let bytes: ByteBuffer
            let bounds = (request.headers[.range] ?? "").dropFirst("bytes=".count).split(separator: "-").compactMap { Int($0) }
            if case .ignoreRange = fault {
                bytes = all
            } else if bounds.count == 2 {
                bytes = all.getSlice(at: bounds[0], length: bounds[1] - bounds[0] + 1)!
            } else {
                bytes = all
            }
            return Response(status: .partialContent, headers: [.eTag: "\"tag\""], body: ResponseBody(contentLength: bytes.readableBytes) { writer in
                var length = bytes.readableBytes
                if case .cutAfter(let limit) = fault { length = limit }
                var offset = 0
                while offset < length {
                    let step = min(100_000, length - offset)
                    try await writer.write(bytes.getSlice(at: offset, length: step)!)
                    offset += step
                }
                if case .cutAfter = fault { throw CancellationError() }
                try await writer.finish(nil)
            })
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { server in
            let client = S3Client(endpoint: "http://127.0.0.1:\(server.port ?? 0)", bucket: "bucket", region: "us-east-1",
                                  http: S3Client.sharedHTTPClient) { AWSCredentials(accessKeyID: "a", secretAccessKey: "b") }
            try await body(client) { requests.withLock { $0 } }
        }
    }

    @Test func aLargeReadRefusedBeforeItsFirstByteIsTriedAgain() async throws {
        let bytes = ByteBuffer(repeating: 7, count: Int(StreamingGet.minimumSize))
        try await Self.withFaultyServer(first: .serviceUnavailable, bytes: bytes) { client, requests in
            var collected = ByteBuffer()
            let etag = try await client.getObject("blobs/x", range: 0...Int64(bytes.readableBytes - 1)) { collected.writeImmutableBuffer($0) }
            #expect(collected == bytes)
            #expect(etag == "\"tag\"")
            #expect(requests() == ["close", "close"], "both tries on connections of their own")
            // A short range stays on the pooled, kept-alive connections.
            _ = try await client.getObject("blobs/x", range: 0...99) { _ in }
            #expect(requests().last == "")
        }
    }

    /// One process holds at most `streamSlots.limit` connections of its own to S3: past them a
    /// large read shares the pooled client's connections, with the same bytes.
    @Test func largeReadsPastTheConnectionLimitShareThePool() async throws {
        let bytes = ByteBuffer(bytes: (0..<Int(StreamingGet.minimumSize)).map { UInt8(truncatingIfNeeded: $0 &* 13) })
        try await Self.withFaultyServer(bytes: bytes) { client, requests in
            for _ in 0..<client.streamSlots.limit { #expect(client.streamSlots.take()) }
            var pooled = ByteBuffer()
            try await client.getObject("blobs/x", range: 0...Int64(bytes.readableBytes - 1)) { pooled.writeImmutableBuffer($0) }
            #expect(pooled == bytes)
            #expect(requests() == [""], "on the pooled client")
            client.streamSlots.give()
            var own = ByteBuffer()
            try await client.getObject("blobs/x", range: 0...Int64(bytes.readableBytes - 1)) { own.writeImmutableBuffer($0) }
            #expect(own == bytes)
            #expect(requests() == ["", "close"], "on a connection of its own once one is free")
            #expect(client.streamSlots.inUse == client.streamSlots.limit - 1, "the read gave its slot back")
        }
    }

    /// Once bytes have gone to the reader, a cut is not papered over by a second read (the reader
    /// has passed them on): the read fails as unavailable storage, after one request.
    @Test func aLargeReadCutMidwayFailsWithoutASecondTry() async throws {
        let bytes = ByteBuffer(repeating: 9, count: Int(StreamingGet.minimumSize))
        try await Self.withFaultyServer(fault: .cutAfter(3 << 20), bytes: bytes) { client, requests in
            var received = 0
            do {
                try await client.getObject("blobs/x", range: 0...Int64(bytes.readableBytes - 1)) { received += $0.readableBytes }
                Issue.record("a cut read succeeded")
            } catch {
                #expect(S3Client.isTransient(error), "\(error)")
            }
            #expect(received > 0 && received < bytes.readableBytes)
            #expect(requests() == ["close"])
        }
    }

    /// A server that ignores the range (more bytes than asked) fails the read before the extra
    /// bytes reach the reader, whichever connection the read took.
    @Test(arguments: [Int64(100), StreamingGet.minimumSize])
    func aReadGetsExactlyTheRangeOrFails(_ length: Int64) async throws {
        let bytes = ByteBuffer(repeating: 3, count: Int(StreamingGet.minimumSize) + 1000)
        try await Self.withFaultyServer(fault: .ignoreRange, bytes: bytes) { client, _ in
            var received: Int64 = 0
            let error = await #expect(throws: S3Client.Failure.self) {
                try await client.getObject("blobs/x", range: 0...(length - 1)) { received += Int64($0.readableBytes) }
            }
            #expect(error?.code == "IncompleteBody")
            #expect(received <= length)
        }
    }

    /// A server that accepts the connection and never answers fails the read after the head
    /// deadline (each try), as unavailable storage; an error answer that never ends is cut after
    /// 1 MiB. Neither holds the read.
    @Test(.timeLimit(.minutes(1))) func aSilentOrEndlessServerDoesNotHoldALargeRead() async throws {
        let bytes = ByteBuffer(repeating: 1, count: 16)
        try await Self.withFaultyServer(fault: .silence, bytes: bytes) { client, _ in
            guard let streams = client.streams else { Issue.record("no stream connections"); return }
            let started = ContinuousClock.now
            await #expect(throws: StreamingGet.BrokenAnswer.self) {
                _ = try await streams.get("/bucket/x", batchSize: 1 << 10, headTimeout: .milliseconds(300)) { _ in }
            }
            #expect(ContinuousClock.now - started < .seconds(20))
        }
        try await Self.withFaultyServer(fault: .endlessError, bytes: bytes) { client, _ in
            guard let streams = client.streams else { Issue.record("no stream connections"); return }
            let answer = try await streams.get("/bucket/x", batchSize: 1 << 10) { _ in Issue.record("an error body reached the sink") }
            #expect(answer.head.status.code == 500)
            #expect((answer.refused?.readableBytes ?? 0) >= 1 << 20)
            #expect((answer.refused?.readableBytes ?? 0) < 2 << 20)
        }
    }
}
