import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// GETs of large bodies on HTTP/1.1 connections of their own: the blob service's read route (for
/// the gateway) and large S3 objects (for the blob service).
///
/// async-http-client's response stream holds one buffer and stops reading the socket until that
/// buffer is taken, so every ~64 KiB costs a stop, a restart and a thread hand-off on each side.
/// Here the connection reads up to 512 KiB at a time (256 KiB under TLS, where NIOSSL gathers a
/// whole read loop's plaintext in one growing buffer) and keeps up to four reads waiting: at most
/// 2 MiB (1 MiB) waits per read for a slow reader, and the reader's CPU per byte is less than half
/// (docs/performance.md). Each GET opens its own connection, closed at the end: worth it for large
/// bodies only; smaller ones belong on a pooled client.
package struct StreamingGet: Sendable {
    /// Bodies (or ranges) from this size on are worth a connection of their own.
    package static let minimumSize: Int64 = 8 << 20
    static let connectTimeout = TimeAmount.seconds(5)

    package let host: String
    package let port: Int
    /// The `Host` header: the URL's host, and its port when the URL names one other than the
    /// scheme's default (what a request signature covers, as S3's SigV4 does).
    package let authority: String
    let tls: NIOSSLContext?
    let group: any EventLoopGroup

    /// The connection could not be made (refused, timed out, TLS handshake failed).
    package struct ConnectFailure: Error, CustomStringConvertible {
        package var underlying: any Error
        package var description: String { "connection failed: \(self.underlying)" }
    }

    /// The answer ended before its end (the connection closed early, it was not HTTP, or its head
    /// did not come within `headTimeout`).
    package struct BrokenAnswer: Error, CustomStringConvertible {
        package var description: String { "the answer ended early" }
    }

    /// The answer's head, and its (short) body when the status was not one of those accepted.
    package struct Answer: Sendable {
        package var head: HTTPResponseHead
        /// Nil when the body went to the sink.
        package var refused: ByteBuffer?
    }

    /// `url` is `http(s)://host[:port]` (a path is ignored); `tls` the client configuration for
    /// `https` (default: the system's trust roots).
    package init(url: String, tls: TLSConfiguration?, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        guard let parsed = URL(string: url), let scheme = parsed.scheme, let host = parsed.host, ["http", "https"].contains(scheme)
        else { throw StreamingGetURLError(url: url) }
        self.host = host
        self.port = parsed.port ?? (scheme == "https" ? 443 : 80)
        self.authority = Self.authority(host: host, port: parsed.port, scheme: scheme)
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

    /// `host[:port]` as a `Host` header (and so a SigV4 signature) carries it: the port only when
    /// it is not the scheme's default, as async-http-client sends it too.
    package static func authority(host: String, port: Int?, scheme: String) -> String {
        let literal = host.contains(":") ? "[\(host)]" : host
        guard let port, port != (scheme == "https" ? 443 : 80) else { return literal }
        return "\(literal):\(port)"
    }

    /// Longest wait for the answer's head after connecting (TLS handshake included); past it the
    /// connection is closed and the GET fails as `BrokenAnswer`. The body has no deadline: it
    /// moves at the reader's pace.
    static let headTimeout = TimeAmount.seconds(60)

    /// The most of a refused answer's body that is kept; the connection is closed after it.
    static let refusedBodyLimit = 1 << 20

    /// GETs `pathAndQuery` with `headers` (`Host` and `Connection: close` are added). When the
    /// status is one of `accepted`, the body goes to `sink` in buffers of at least `batchSize`
    /// bytes (but the last); otherwise up to 1 MiB of it comes back in the answer.
    package func get(
        _ pathAndQuery: String, headers: [(String, String)] = [], accepted: Set<UInt> = [200], batchSize: Int,
        headTimeout: TimeAmount = StreamingGet.headTimeout, into sink: (ByteBuffer) async throws -> Void
    ) async throws -> Answer {
        let connection = try await self.connect()
        do {
            return try await self.exchange(
                connection, pathAndQuery, headers: headers, accepted: accepted, batchSize: batchSize, headTimeout: headTimeout,
                into: sink
            )
        } catch is HTTPParserError {
            // A connection closed mid-body (or an answer that is not HTTP) is an answer cut short.
            throw BrokenAnswer()
        } catch let error as NIOSSLError {
            switch error {
            case .handshakeFailed: throw ConnectFailure(underlying: error)
            case .uncleanShutdown: throw BrokenAnswer()
            default: throw error
            }
        }
    }

    private func exchange(
        _ connection: Connection, _ pathAndQuery: String, headers: [(String, String)], accepted: Set<UInt>, batchSize: Int,
        headTimeout: TimeAmount, into sink: (ByteBuffer) async throws -> Void
    ) async throws -> Answer {
        let channel = connection.channel
        let deadline = channel.eventLoop.scheduleTask(in: headTimeout) { channel.close(promise: nil) }
        defer { deadline.cancel() }
        return try await connection.executeThenClose { inbound, outbound in
            var requestHeaders = HTTPHeaders([("Host", self.authority), ("Connection", "close")])
            for (name, value) in headers { requestHeaders.add(name: name, value: value) }
            try await outbound.write(.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: pathAndQuery, headers: requestHeaders)))
            try await outbound.write(.end(nil))
            var parts = inbound.makeAsyncIterator()
            guard case .head(let head) = try await parts.next() else { throw BrokenAnswer() }
            deadline.cancel()
            var refused: ByteBuffer? = accepted.contains(head.status.code) ? nil : ByteBuffer()
            var batches = Batcher(size: batchSize)
            while let part = try await parts.next() {
                switch part {
                case .head:
                    throw BrokenAnswer()
                case .body(let chunk):
                    if refused != nil {
                        refused!.writeImmutableBuffer(chunk)
                        // An error answer that does not end is not read to its end.
                        if refused!.readableBytes >= Self.refusedBodyLimit { return Answer(head: head, refused: refused) }
                    } else if let batch = batches.add(chunk) {
                        try await sink(batch)
                    }
                case .end:
                    if refused == nil, let rest = batches.rest() { try await sink(rest) }
                    return Answer(head: head, refused: refused)
                }
            }
            throw BrokenAnswer()
        }
    }

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
            throw ConnectFailure(underlying: error)
        }
    }
}

/// A URL given to `StreamingGet` that is not `http(s)://host…`.
package struct StreamingGetURLError: Error, CustomStringConvertible {
    package var url: String
    package var description: String { "\"\(self.url)\" is not an http(s) URL" }
}

/// Gathers network reads (often a few KiB each) into buffers of at least `size` bytes, so that
/// the response is written in few large writes.
package struct Batcher {
    package let size: Int
    private var pending = ByteBuffer()

    package init(size: Int) {
        self.size = size
    }

    /// The next full batch, if `chunk` completes one.
    package mutating func add(_ chunk: ByteBuffer) -> ByteBuffer? {
        if self.pending.readableBytes == 0 && chunk.readableBytes >= self.size { return chunk }
        self.pending.writeImmutableBuffer(chunk)
        guard self.pending.readableBytes >= self.size else { return nil }
        defer { self.pending = ByteBuffer() }
        return self.pending
    }

    /// What is left at the end of the body.
    package func rest() -> ByteBuffer? {
        self.pending.readableBytes > 0 ? self.pending : nil
    }
}
