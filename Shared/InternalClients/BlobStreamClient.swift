import Contracts
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Runtime

/// Reads large blobs from the blob service on HTTP/1.1 connections of their own (`StreamingGet`):
/// async-http-client's one-buffer response stream costs the gateway more than twice the CPU per
/// pulled byte (docs/performance.md). Smaller blobs keep using the pooled async-http-client.
package struct BlobStreamClient: Sendable {
    /// Blobs (or ranges) from this size on are read here.
    package static let minimumSize: Int64 = StreamingGet.minimumSize

    let stream: StreamingGet

    /// `base` is the blob service's URL (`http(s)://host:port`); `tls` the internal client
    /// configuration when it is `https`.
    package init(base: String, tls: TLSConfiguration?, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        do {
            self.stream = try StreamingGet(url: base, tls: tls, group: group)
        } catch let error as StreamingGetURLError {
            throw ConfigurationError("BLOB_URL", error.description)
        }
    }

    /// GETs `pathAndQuery` and hands the body to `sink` in buffers of at least `batchSize` bytes
    /// (but the last); a non-200 answer comes back as the status and its (short) body.
    func get(
        _ pathAndQuery: String, batchSize: Int, into sink: (ByteBuffer) async throws -> Void
    ) async throws -> (status: HTTPResponseStatus, body: ByteBuffer)? {
        var headers: [(String, String)] = []
        if let id = RequestID.current { headers.append(("X-Request-Id", id)) }
        do {
            let answer = try await self.stream.get(pathAndQuery, headers: headers, batchSize: batchSize, into: sink)
            return answer.refused.map { (answer.head.status, $0) }
        } catch is StreamingGet.ConnectFailure {
            throw RegistryError(.unavailable, "the blob service is not reachable; try again shortly")
        } catch is StreamingGet.BrokenAnswer {
            throw Self.brokenAnswer
        }
    }

    static let brokenAnswer = RegistryError(.badGateway, "the blob service's answer ended early")
}
