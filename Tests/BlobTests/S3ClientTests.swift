import AsyncHTTPClient
import Foundation
import NIOCore
import Runtime
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
}
