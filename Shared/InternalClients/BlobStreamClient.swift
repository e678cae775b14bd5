import Contracts
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Runtime

/// Reads large blobs from the blob service on HTTP/1.1 connections of its own.
///
/// async-http-client's response stream holds one buffer and stops reading the socket until that
/// buffer is taken, so every ~64 KiB costs a stop, a restart and a thread hand-off on each side.
/// Here the connection reads up to 512 KiB at a time (256 KiB under TLS, where NIOSSL gathers a
/// whole read loop's plaintext in one growing buffer) and keeps up to four reads waiting: at most
/// 2 MiB (1 MiB) waits per read for a slow client, and the gateway's CPU per pulled byte is less
/// than half (docs/performance.md). Each read opens its own connection, closed at the end: worth
/// it for large blobs only (`minimumSize`); smaller ones keep using the pooled async-http-client.
package struct BlobStreamClient: Sendable {
    /// Blobs (or ranges) from this size on are read here.
    package static let minimumSize: Int64 = 8 << 20
    static let connectTimeout = TimeAmount.seconds(5)

    let host: String
    let port: Int
    let tls: NIOSSLContext?
    let group: any EventLoopGroup

    /// `base` is the blob service's URL (`http(s)://host:port`); `tls` the internal client
    /// configuration when it is `https`.
    package init(base: String, tls: TLSConfiguration?, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        guard let url = URL(string: base), let scheme = url.scheme, let host = url.host, ["http", "https"].contains(scheme)
        else { throw ConfigurationError("BLOB_URL", "\"\(base)\" is not an http(s) URL") }
        self.host = host
        self.port = url.port ?? (scheme == "https" ? 443 : 80)
        if scheme == "https" {
            var configuration = tls ?? TLSConfiguration.makeClientConfiguration()
            configuration.applicationProtocols = ["http/1.1"]
            self.tls = try NIOSSLContext(configuration: configuration)
        } else {
            self.tls = nil
        }
        self.group = group
    }

    typealias Connection = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    /// GETs `pathAndQuery` and hands the body to `sink` in buffers of at least `batchSize` bytes
    /// (but the last); a non-200 answer comes back as the status and its (short) body.
    func get(
        _ pathAndQuery: String, batchSize: Int, into sink: (ByteBuffer) async throws -> Void
    ) async throws -> (status: HTTPResponseStatus, body: ByteBuffer)? {
        let connection = try await self.connect()
        return try await connection.executeThenClose { inbound, outbound in
            var headers = HTTPHeaders([("Host", "\(self.host):\(self.port)"), ("Connection", "close")])
            if let id = RequestID.current { headers.add(name: "X-Request-Id", value: id) }
            try await outbound.write(.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: pathAndQuery, headers: headers)))
            try await outbound.write(.end(nil))
            var parts = inbound.makeAsyncIterator()
            guard case .head(let head) = try await parts.next() else { throw Self.brokenAnswer }
            var failure: ByteBuffer? = head.status == .ok ? nil : ByteBuffer()
            var batches = Batcher(size: batchSize)
            while let part = try await parts.next() {
                switch part {
                case .head:
                    throw Self.brokenAnswer
                case .body(let chunk):
                    if failure != nil {
                        if failure!.readableBytes < 1 << 20 { failure!.writeImmutableBuffer(chunk) }
                    } else if let batch = batches.add(chunk) {
                        try await sink(batch)
                    }
                case .end:
                    if let failure { return (head.status, failure) }
                    if let rest = batches.rest() { try await sink(rest) }
                    return nil
                }
            }
            throw Self.brokenAnswer
        }
    }

    static let brokenAnswer = RegistryError(.badGateway, "the blob service's answer ended early")

    private func connect() async throws -> Connection {
        let tls = self.tls
        let host = self.host
        do {
            return try await ClientBootstrap(group: self.group)
                .connectTimeout(Self.connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(
                    minimum: 64 << 10, initial: 256 << 10, maximum: tls == nil ? 512 << 10 : 256 << 10
                ))
                .connect(host: self.host, port: self.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            // SNI and certificate names are host names; an IP literal is sent without.
                            let serverName = (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverName))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try Connection(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 4))
                        )
                    }
                }
        } catch {
            throw RegistryError(.unavailable, "the blob service is not reachable; try again shortly")
        }
    }
}
