import Contracts
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import Runtime
import Testing

/// Blob push and pull as the distribution spec describes them, against the live server.
@Suite struct BlobProtocolTests {
    let repository = "team/app"

    @Test func pingAnswersWithTheAPIVersion() async throws {
        try await RegistryHarness.withRegistry { registry in
            let response = try await registry.request(.get, "/v2/")
            #expect(response.status == .ok)
            #expect(response.headers[.dockerDistributionAPIVersion] == "registry/2.0")
        }
    }

    @Test func monolithicPostThenPut() async throws {
        try await RegistryHarness.withRegistry { registry in
            let bytes = ByteBuffer(string: "monolithic layer")
            let digest = DigestHasher.digest(of: bytes)
            let start = try await registry.request(.post, "/v2/team/app/blobs/uploads/")
            #expect(start.status == .accepted)
            #expect(start.headers[.dockerUploadUUID] != nil)
            #expect(start.headers[.range] == "0-0")
            let location = try #require(start.headers[.location])
            #expect(location.hasPrefix("/v2/team/app/blobs/uploads/"))
            let put = try await registry.request(.put, "\(location)?digest=\(digest)", body: bytes)
            #expect(put.status == .created)
            #expect(put.headers[.location] == "/v2/team/app/blobs/\(digest)")
            #expect(put.headers[.dockerContentDigest] == digest.description)

            let head = try await registry.request(.head, "/v2/team/app/blobs/\(digest)")
            #expect(head.status == .ok)
            #expect(head.headers[.contentLength] == String(bytes.readableBytes))
            #expect(head.headers[.dockerContentDigest] == digest.description)
            let get = try await registry.request(.get, "/v2/team/app/blobs/\(digest)")
            #expect(get.body == bytes)
            #expect(get.headers[.dockerContentDigest] == digest.description)
        }
    }

    @Test func singlePostWithDigest() async throws {
        try await RegistryHarness.withRegistry { registry in
            let bytes = ByteBuffer(string: "single request")
            let digest = DigestHasher.digest(of: bytes)
            let post = try await registry.request(.post, "/v2/team/app/blobs/uploads/?digest=\(digest)", body: bytes)
            #expect(post.status == .created)
            #expect(post.headers[.dockerContentDigest] == digest.description)
            #expect(try await registry.request(.get, "/v2/team/app/blobs/\(digest)").body == bytes)
        }
    }

    @Test func streamedPatchThenEmptyPut() async throws {
        try await RegistryHarness.withRegistry { registry in
            let bytes = ByteBuffer(repeating: 7, count: 300_000)
            let digest = DigestHasher.digest(of: bytes)
            let start = try await registry.request(.post, "/v2/team/app/blobs/uploads/")
            let location = try #require(start.headers[.location])
            let patch = try await registry.request(.patch, location, body: bytes)
            #expect(patch.status == .accepted)
            #expect(patch.headers[.range] == "0-299999")
            let next = try #require(patch.headers[.location])
            let put = try await registry.request(.put, "\(next)?digest=\(digest)", headers: [.contentLength: "0"])
            #expect(put.status == .created)
            #expect(try await registry.request(.get, "/v2/team/app/blobs/\(digest)").body == bytes)
        }
    }

    @Test func chunkedPatchesWithStatusAndLastChunkOnPut() async throws {
        try await RegistryHarness.withRegistry { registry in
            let whole = ByteBuffer(string: "0123456789abcdefghij")
            let digest = DigestHasher.digest(of: whole)
            let start = try await registry.request(.post, "/v2/team/app/blobs/uploads/")
            let location = try #require(start.headers[.location])
            let first = try await registry.request(
                .patch, location, headers: [.contentRange: "0-9", .contentLength: "10"],
                body: whole.getSlice(at: 0, length: 10)
            )
            #expect(first.status == .accepted)
            #expect(first.headers[.range] == "0-9")
            let status = try await registry.request(.get, location)
            #expect(status.status == .noContent)
            #expect(status.headers[.range] == "0-9")
            #expect(status.headers[.dockerUploadUUID] != nil)
            let put = try await registry.request(
                .put, "\(location)?digest=\(digest)", headers: [.contentRange: "10-19", .contentLength: "10"],
                body: whole.getSlice(at: 10, length: 10)
            )
            #expect(put.status == .created)
            #expect(try await registry.request(.get, "/v2/team/app/blobs/\(digest)").body == whole)
        }
    }

    @Test func outOfOrderChunkIs416() async throws {
        try await RegistryHarness.withRegistry { registry in
            let start = try await registry.request(.post, "/v2/team/app/blobs/uploads/")
            let location = try #require(start.headers[.location])
            _ = try await registry.request(
                .patch, location, headers: [.contentRange: "0-3", .contentLength: "4"], body: ByteBuffer(string: "abcd")
            )
            let skipped = try await registry.request(
                .patch, location, headers: [.contentRange: "10-13", .contentLength: "4"], body: ByteBuffer(string: "efgh")
            )
            #expect(skipped.status == .rangeNotSatisfiable)
            #expect(Registry.errorCode(skipped) == "BLOB_UPLOAD_INVALID")
            #expect(skipped.headers[.location] == location)
            #expect(skipped.headers[.range] == "0-3")
            let onPut = try await registry.request(
                .put, "\(location)?digest=\(DigestHasher.digest(of: ByteBuffer(string: "abcdefgh")))",
                headers: [.contentRange: "2-5", .contentLength: "4"], body: ByteBuffer(string: "efgh")
            )
            #expect(onPut.status == .rangeNotSatisfiable)
            #expect(try await registry.request(.get, location).headers[.range] == "0-3")
            let mismatch = try await registry.request(
                .patch, location, headers: [.contentRange: "4-9"], body: ByteBuffer(string: "ef")
            )
            #expect(mismatch.status == .badRequest)
            #expect(Registry.errorCode(mismatch) == "SIZE_INVALID")
        }
    }

    @Test func wrongDigestIsDigestInvalidAndStoresNothing() async throws {
        try await RegistryHarness.withRegistry { registry in
            let bytes = ByteBuffer(string: "real bytes")
            let claimed = DigestHasher.digest(of: ByteBuffer(string: "other bytes"))
            let start = try await registry.request(.post, "/v2/team/app/blobs/uploads/")
            let location = try #require(start.headers[.location])
            let put = try await registry.request(.put, "\(location)?digest=\(claimed)", body: bytes)
            #expect(put.status == .badRequest)
            #expect(Registry.errorCode(put) == "DIGEST_INVALID")
            #expect(try await registry.request(.head, "/v2/team/app/blobs/\(claimed)").status == .notFound)
            let real = DigestHasher.digest(of: bytes)
            #expect(try await registry.request(.head, "/v2/team/app/blobs/\(real)").status == .notFound)
            let blobs = registry.directory.appendingPathComponent("blobs/sha256")
            #expect((try? FileManager.default.contentsOfDirectory(atPath: blobs.path))?.isEmpty ?? true)
            let uploads = registry.directory.appendingPathComponent("uploads")
            #expect(try FileManager.default.contentsOfDirectory(atPath: uploads.path).isEmpty)
            // The session ended with the failed commit.
            #expect(try await registry.request(.get, location).status == .notFound)
        }
    }

    @Test func malformedDigestsAreDigestInvalid() async throws {
        try await RegistryHarness.withRegistry { registry in
            for digest in ["sha256:abc", "md5:" + String(repeating: "a", count: 32), "nonsense"] {
                let post = try await registry.request(.post, "/v2/team/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(string: "x"))
                #expect(post.status == .badRequest, "\(digest)")
                #expect(Registry.errorCode(post) == "DIGEST_INVALID", "\(digest)")
                let get = try await registry.request(.get, "/v2/team/app/blobs/\(digest)")
                #expect(Registry.errorCode(get) == "DIGEST_INVALID", "\(digest)")
            }
            let start = try await registry.request(.post, "/v2/team/app/blobs/uploads/")
            let location = try #require(start.headers[.location])
            let missing = try await registry.request(.put, location, body: ByteBuffer(string: "x"))
            #expect(Registry.errorCode(missing) == "DIGEST_INVALID")
        }
    }

    @Test func unknownUploadSessionIs404() async throws {
        try await RegistryHarness.withRegistry { registry in
            for id in ["0f8fad5b-d9cb-469f-a165-70867728950e", "not-a-uuid", "..%2F..%2Fetc"] {
                let response = try await registry.request(.patch, "/v2/team/app/blobs/uploads/\(id)", body: ByteBuffer(string: "x"))
                #expect(response.status == .notFound, "\(id)")
                #expect(Registry.errorCode(response) == "BLOB_UPLOAD_UNKNOWN", "\(id)")
            }
            // A session of one repository cannot be used through another.
            let start = try await registry.request(.post, "/v2/team/app/blobs/uploads/")
            let id = try #require(start.headers[.dockerUploadUUID])
            let other = try await registry.request(.get, "/v2/other/app/blobs/uploads/\(id)")
            #expect(Registry.errorCode(other) == "BLOB_UPLOAD_UNKNOWN")
        }
    }

    @Test func blobsAreReadableOnlyThroughTheirRepository() async throws {
        try await RegistryHarness.withRegistry { registry in
            let digest = try await registry.pushBlob(ByteBuffer(string: "private"), to: "team/app")
            let elsewhere = try await registry.request(.get, "/v2/other/app/blobs/\(digest)")
            #expect(elsewhere.status == .notFound)
            #expect(Registry.errorCode(elsewhere) == "BLOB_UNKNOWN")
            #expect(try await registry.request(.head, "/v2/other/app/blobs/\(digest)").status == .notFound)
        }
    }

    @Test func mountFromAnotherRepository() async throws {
        try await RegistryHarness.withRegistry { registry in
            let digest = try await registry.pushBlob(ByteBuffer(string: "shared"), to: "team/app")
            let mount = try await registry.request(.post, "/v2/team/copy/blobs/uploads/?mount=\(digest)&from=team/app")
            #expect(mount.status == .created)
            #expect(mount.headers[.location] == "/v2/team/copy/blobs/\(digest)")
            #expect(try await registry.request(.get, "/v2/team/copy/blobs/\(digest)").body == ByteBuffer(string: "shared"))
            // An impossible mount falls back to a normal session.
            let fallback = try await registry.request(.post, "/v2/team/copy/blobs/uploads/?mount=\(digest)&from=no/such")
            #expect(fallback.status == .accepted)
        }
    }

    @Test func rangeRequests() async throws {
        try await RegistryHarness.withRegistry { registry in
            let bytes = ByteBuffer(bytes: (0..<2048).map { UInt8($0 % 251) })
            let digest = try await registry.pushBlob(bytes, to: "team/app")
            let uri = "/v2/team/app/blobs/\(digest)"
            let middle = try await registry.request(.get, uri, headers: [.range: "bytes=500-1499"])
            #expect(middle.status == .partialContent)
            #expect(middle.headers[.contentRange] == "bytes 500-1499/2048")
            #expect(middle.body == bytes.getSlice(at: 500, length: 1000))
            let suffix = try await registry.request(.get, uri, headers: [.range: "bytes=-500"])
            #expect(suffix.body == bytes.getSlice(at: 1548, length: 500))
            let beyond = try await registry.request(.get, uri, headers: [.range: "bytes=5000-10000"])
            #expect(beyond.status == .rangeNotSatisfiable)
            #expect(beyond.headers[.contentRange] == "bytes */2048")
        }
    }

    @Test func sha512AndEmptyBlobs() async throws {
        try await RegistryHarness.withRegistry { registry in
            let bytes = ByteBuffer(string: "sha512 content")
            let digest = DigestHasher.digest(of: bytes, algorithm: .sha512)
            let start = try await registry.request(.post, "/v2/team/app/blobs/uploads/?digest-algorithm=sha512")
            let location = try #require(start.headers[.location])
            #expect(try await registry.request(.put, "\(location)?digest=\(digest)", body: bytes).status == .created)
            #expect(try await registry.request(.get, "/v2/team/app/blobs/\(digest)").body == bytes)
            let empty = try await registry.pushBlob(ByteBuffer(), to: "team/app")
            let head = try await registry.request(.head, "/v2/team/app/blobs/\(empty)")
            #expect(head.headers[.contentLength] == "0")
        }
    }

    @Test func cancelledUploadIsGone() async throws {
        try await RegistryHarness.withRegistry { registry in
            let start = try await registry.request(.post, "/v2/team/app/blobs/uploads/")
            let location = try #require(start.headers[.location])
            _ = try await registry.request(.patch, location, body: ByteBuffer(string: "partial"))
            #expect(try await registry.request(.delete, location).status == .noContent)
            #expect(try await registry.request(.get, location).status == .notFound)
        }
    }
}
