import AsyncHTTPClient
import Contracts
import Foundation
import Logging
import NIOCore
import Runtime
import TestSupport
import Testing

@testable import Blob

/// The storage drivers the conformance suite runs on.
enum StorageBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case filesystem
    case s3

    var testDescription: String { self.rawValue }
}

/// A blob service over fresh storage of one backend, and ways to look at that storage directly.
struct StorageFixture: Sendable {
    let service: BlobService
    /// Another service over the same storage (another replica).
    let replica: @Sendable () async throws -> BlobService
    /// Whatever upload sessions left in the storage: files under `uploads/`, or S3 objects under
    /// `uploads/` plus multipart uploads in progress.
    let uploadLeftovers: @Sendable () async throws -> [String]
    /// The stored blobs' files or objects.
    let storedBlobs: @Sendable () async throws -> [String]

    static let logger = Logger(label: "test")

    /// Part size for S3 in the tests: the smallest S3 allows, so a few MiB already span parts.
    static let partSize = 5 << 20

    static func with(_ backend: StorageBackend, _ body: (StorageFixture) async throws -> Void) async throws {
        switch backend {
        case .filesystem:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-blob-\(UUID())")
            defer { try? FileManager.default.removeItem(at: directory) }
            let make: @Sendable () async throws -> BlobService = {
                try await BlobService.filesystem(directory: directory.path, logger: Self.logger)
            }
            try await body(StorageFixture(
                service: try await make(), replica: make,
                uploadLeftovers: { Self.files(under: directory, "uploads") },
                storedBlobs: { Self.files(under: directory, "blobs") }
            ))
        case .s3:
            let moto = try await MotoServer.shared()
            let settings = Self.settings(moto, prefix: "test-\(UUID())")
            let make: @Sendable () async throws -> BlobService = {
                try await BlobService.s3(settings: settings, logger: Self.logger)
            }
            let client = Self.client(moto)
            try await body(StorageFixture(
                service: try await make(), replica: make,
                uploadLeftovers: {
                    try await client.listObjects(prefix: settings.prefix + "uploads/").map(\.key)
                        + client.listMultipartUploads(prefix: settings.prefix).map { "multipart upload \($0)" }
                },
                storedBlobs: { try await client.listObjects(prefix: settings.prefix + "blobs/").map(\.key) }
            ))
        }
    }

    static func settings(_ moto: MotoServer, prefix: String, secret: String? = nil) -> S3Settings {
        S3Settings(
            bucket: moto.bucket, prefix: prefix, region: "us-east-1", endpoint: moto.endpoint, partSize: Self.partSize,
            accessKeyID: moto.accessKeyID, secretAccessKey: secret ?? moto.secretAccessKey
        )
    }

    static func client(_ moto: MotoServer) -> S3Client {
        let credentials = AWSCredentials(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey)
        return S3Client(endpoint: moto.endpoint, bucket: moto.bucket, region: "us-east-1", http: S3Client.sharedHTTPClient) {
            credentials
        }
    }

    static func files(under directory: URL, _ subdirectory: String) -> [String] {
        let root = directory.appendingPathComponent(subdirectory)
        let enumerator = FileManager.default.enumerator(atPath: root.path)
        return (enumerator?.allObjects as? [String] ?? []).filter {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: root.appendingPathComponent($0).path, isDirectory: &isDirectory)
            return !isDirectory.boolValue
        }
    }

    static func stream(_ chunks: [ByteBuffer]) -> AsyncStream<ByteBuffer> {
        AsyncStream { continuation in
            for chunk in chunks { continuation.yield(chunk) }
            continuation.finish()
        }
    }

    static func stream(_ chunks: [String]) -> AsyncStream<ByteBuffer> {
        self.stream(chunks.map { ByteBuffer(string: $0) })
    }

    /// `count` bytes of a repeating pattern that differs at every offset modulo 251.
    static func pattern(_ count: Int, from start: Int = 0) -> ByteBuffer {
        ByteBuffer(bytes: (start..<(start + count)).map { UInt8($0 % 251) })
    }

    static func readAll(_ service: BlobService, _ blob: BlobRecord, range: ClosedRange<Int64>? = nil) async throws -> ByteBuffer {
        var collected = ByteBuffer()
        try await service.read(blob, range: range) { chunk in
            var chunk = chunk
            collected.writeBuffer(&chunk)
        }
        return collected
    }
}
