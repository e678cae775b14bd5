import AsyncAlgorithms
import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore
import NIOHTTP1
import Runtime

/// `BlobAPI` over the blob service's internal API. Bytes stream in both directions through the
/// client's back-pressure: an upload body is passed on as it arrives, a read is handed to the
/// sink chunk by chunk.
package struct RemoteBlobs: BlobAPI {
    let client: InternalClient
    /// Longest a stream may stall before the call fails.
    static let streamTimeout = TimeAmount.hours(24)

    /// `http` should speak HTTP/1.1 for the byte streams (see docs/performance.md).
    /// Whether the service answers its readiness check.
    package func isReady() async -> Bool { await self.client.isReady() }

    /// Bytes gathered from the network before each hand-off in either direction.
    package static let batchSize = 256 << 10

    /// Reads of large blobs, on connections of their own; nil: everything through `client`.
    let streams: BlobStreamClient?

    package init(url: String, http: HTTPClient, streams: BlobStreamClient? = nil) {
        self.client = InternalClient(base: url.hasSuffix("/") ? String(url.dropLast()) : url, http: http, service: "blob")
        self.streams = streams
    }

    private func session(_ id: UploadID, _ repository: RepositoryName) -> String {
        let name = repository.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        return "\(self.client.base)\(InternalBlobPaths.path(InternalBlobPaths.session, id: id))?repository=\(name)"
    }

    package func startUpload(
        for repository: RepositoryName, algorithm: Digest.Algorithm, owner: String
    ) async throws -> UploadStatus {
        try await self.client.call(
            InternalBlobPaths.startUpload, InternalBlobPaths.StartUpload(repository: repository, algorithm: algorithm, owner: owner)
        )
    }

    package func uploadStatus(_ id: UploadID, for repository: RepositoryName) async throws -> UploadStatus {
        try await self.client.json(HTTPClientRequest(url: self.session(id, repository)))
    }

    package func appendUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, for repository: RepositoryName, at offset: Int64?, body: Body
    ) async throws -> UploadStatus where Body.Element == ByteBuffer {
        var url = self.session(id, repository)
        if let offset { url += "&offset=\(offset)" }
        return try await self.stream(body, .PATCH, to: url)
    }

    /// `PUT` on the session with the last chunk as the body and `digest=`: append and commit in
    /// one request.
    package func commitUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, for repository: RepositoryName, digest: Digest, appending body: Body, at offset: Int64?
    ) async throws -> BlobRecord where Body.Element == ByteBuffer {
        var url = self.session(id, repository) + "&digest=\(digest)"
        if let offset { url += "&offset=\(offset)" }
        return try await self.stream(body, .PUT, to: url)
    }

    /// Sends `body` as a streamed request and decodes the JSON answer.
    private func stream<Body: AsyncSequence & Sendable, Answer: Decodable & Sendable>(
        _ body: Body, _ method: NIOHTTP1.HTTPMethod, to url: String
    ) async throws -> Answer where Body.Element == ByteBuffer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        // The incoming body is read only by a task of this call, and that task has ended when the
        // call returns: the HTTP client may stop reading early (the blob service failed or
        // answered), and the server then drains the rest of the body itself.
        let channel = AsyncThrowingChannel<ByteBuffer, any Error>()
        request.body = .stream(channel, length: .unknown)
        let streaming = request
        return try await withThrowingTaskGroup(of: Answer?.self) { group in
            group.addTask {
                do {
                    // Small network chunks are gathered into larger writes: far fewer hand-offs
                    // and TLS records per byte.
                    var pending = ByteBuffer()
                    for try await chunk in body {
                        pending.writeImmutableBuffer(chunk)
                        if pending.readableBytes >= Self.batchSize {
                            await channel.send(pending)
                            pending = ByteBuffer()
                            try Task.checkCancellation()
                        }
                    }
                    if pending.readableBytes > 0 { await channel.send(pending) }
                    channel.finish()
                } catch {
                    channel.fail(error)
                }
                return nil
            }
            group.addTask {
                try await self.client.json(streaming, timeout: Self.streamTimeout) as Answer
            }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let answer = next { return answer }
            }
            throw RegistryError(.unknown, "the blob service gave no answer")
        }
    }

    package func commitUpload(_ id: UploadID, for repository: RepositoryName, digest: Digest) async throws -> BlobRecord {
        try await self.client.call(
            InternalBlobPaths.commit, InternalBlobPaths.Commit(repository: repository, digest: digest), id: id
        )
    }

    package func cancelUpload(_ id: UploadID, for repository: RepositoryName) async throws {
        var request = HTTPClientRequest(url: self.session(id, repository))
        request.method = .DELETE
        let _: InternalMetadata.Done = try await self.client.json(request)
    }

    package func discard(locations: [String]) async throws -> [String] {
        try await self.client.call(InternalBlobPaths.discardAll, InternalMetadata.Locations(locations: locations), timeout: .minutes(5))
            .locations
    }

    package func storedBlobs(after location: String?, limit: Int) async throws -> StoredBlobPage {
        try await self.client.call(
            InternalBlobPaths.storedBlobs, InternalMetadata.Listing(repository: nil, page: PageRequest(limit: limit, after: location)),
            timeout: .minutes(5)
        )
    }

    package func discard(_ blob: BlobRecord) async throws {
        let _: InternalMetadata.Done = try await self.client.call(InternalBlobPaths.discard, blob)
    }

    package func externalURL(for blob: BlobRecord) async throws -> String? {
        let answer: InternalBlobPaths.ExternalURL = try await self.client.call(InternalBlobPaths.externalURL, blob)
        return answer.url
    }

    package func read(
        _ blob: BlobRecord, range: ClosedRange<Int64>?, into sink: (ByteBuffer) async throws -> Void
    ) async throws {
        let location = blob.location.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        var pathAndQuery = "\(InternalBlobPaths.read)?location=\(location)&size=\(blob.size)&digest=\(blob.digest)"
        if let range { pathAndQuery += "&start=\(range.lowerBound)&end=\(range.upperBound)" }
        let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? blob.size
        if let streams, length >= BlobStreamClient.minimumSize {
            if let failure = try await streams.get(pathAndQuery, batchSize: Self.batchSize, into: sink) {
                try self.client.check(failure.status, body: failure.body)
            }
            return
        }
        let url = self.client.base + pathAndQuery
        let response = try await self.client.execute(HTTPClientRequest(url: url), timeout: Self.streamTimeout)
        guard response.status == .ok else {
            try self.client.check(response.status, body: try await response.body.collect(upTo: 1 << 20))
            return
        }
        var batches = Batcher(size: Self.batchSize)
        for try await chunk in response.body {
            if let batch = batches.add(chunk) { try await sink(batch) }
        }
        if let rest = batches.rest() { try await sink(rest) }
    }
}
