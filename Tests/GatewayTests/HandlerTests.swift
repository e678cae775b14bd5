import Contracts
import Crypto
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import InMemory
import Registry
import Testing

/// The gateway's handlers over the Registry layer with in-memory services: HTTP in, the layer's
/// calls, HTTP out — no database, no storage, no other service.
@Suite struct HandlerTests {
    static func digest(_ text: String) -> String {
        "sha256:" + SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func withGateway(
        _ metadata: InMemoryMetadata = InMemoryMetadata(), _ blobs: InMemoryBlobs = InMemoryBlobs(),
        _ test: @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let router = Gateway.router(registry: RegistryService(metadata: metadata, blobs: blobs))
        try await Application(router: router).test(.live) { client in try await test(client) }
    }

    /// A monolithic push (POST, then PUT with the body) is stored and pulled back, whole and ranged.
    @Test func aMonolithicPushIsPulledBack() async throws {
        let metadata = InMemoryMetadata()
        let blobs = InMemoryBlobs()
        try await Self.withGateway(metadata, blobs) { client in
            let started = try await client.execute(uri: "/v2/team/app/blobs/uploads/", method: .post)
            #expect(started.status == .accepted)
            let location = try #require(started.headers[.location])
            let digest = Self.digest("the layer")
            let put = try await client.execute(
                uri: location + "?digest=\(digest)", method: .put, body: ByteBuffer(string: "the layer")
            )
            #expect(put.status == .created)
            #expect(blobs.count("commitUpload") == 1 && blobs.count("uploadStatus") == 0 && metadata.count("linkBlob") == 1)
            let pulled = try await client.execute(uri: "/v2/team/app/blobs/\(digest)", method: .get)
            #expect(pulled.status == .ok && String(buffer: pulled.body) == "the layer")
            #expect(pulled.headers[.contentLength] == "9")
            let ranged = try await client.execute(uri: "/v2/team/app/blobs/\(digest)", method: .get, headers: [.range: "bytes=4-6"])
            #expect(ranged.status == .partialContent && String(buffer: ranged.body) == "lay")
            #expect(ranged.headers[.contentRange] == "bytes 4-6/9")
        }
    }

    /// Storage that cannot be read answers 503 UNAVAILABLE before any header of a 200 goes out.
    @Test func anUnreadableStorageIs503() async throws {
        let blobs = InMemoryBlobs()
        try await Self.withGateway(InMemoryMetadata(), blobs) { client in
            let digest = Self.digest("x")
            let location = try #require(try await client.execute(uri: "/v2/team/app/blobs/uploads/", method: .post).headers[.location])
            _ = try await client.execute(uri: location + "?digest=\(digest)", method: .put, body: ByteBuffer(string: "x"))
            blobs.failReads(with: RegistryError(.unavailable, "blob storage is unavailable; try again shortly"))
            let failed = try await client.execute(uri: "/v2/team/app/blobs/\(digest)", method: .get)
            #expect(failed.status == .serviceUnavailable)
            #expect(String(buffer: failed.body).contains("\"code\":\"UNAVAILABLE\""))
        }
    }

    /// Catalog codes with statuses of their own render as the OCI code clients know.
    @Test func catalogCodesRenderAsTheirOCICode() async throws {
        try await Self.withGateway { client in
            let started = try await client.execute(uri: "/v2/team/app/blobs/uploads/", method: .post)
            let location = try #require(started.headers[.location])
            // A chunk that does not start where the upload stands: 416, BLOB_UPLOAD_INVALID.
            let chunk = try await client.execute(
                uri: location, method: .patch, headers: [.contentRange: "5-9", .contentLength: "5"], body: ByteBuffer(string: "abcde")
            )
            #expect(chunk.status == .rangeNotSatisfiable)
            // An unknown resource: 404, UNSUPPORTED.
            let unknown = try await client.execute(uri: "/v2/team/app/nothing-here", method: .get)
            #expect(unknown.status == .notFound)
            #expect(String(buffer: unknown.body).contains("\"code\":\"UNSUPPORTED\""))
            // A page size that is not a number: 400, UNSUPPORTED.
            let page = try await client.execute(uri: "/v2/_catalog?n=many", method: .get)
            #expect(page.status == .badRequest)
            #expect(String(buffer: page.body).contains("\"code\":\"UNSUPPORTED\""))
        }
    }

    /// A blob's unlink and a missing blob go through the layer to metadata.
    @Test func deletesAndMissesReachMetadata() async throws {
        let metadata = InMemoryMetadata()
        try await Self.withGateway(metadata) { client in
            let digest = Self.digest("gone")
            let missing = try await client.execute(uri: "/v2/team/app/blobs/\(digest)", method: .head)
            #expect(missing.status == .notFound)
            let delete = try await client.execute(uri: "/v2/team/app/blobs/\(digest)", method: .delete)
            #expect(delete.status == .notFound)
            #expect(metadata.count("blob") == 1 && metadata.count("unlinkBlob") == 1)
        }
    }
}
