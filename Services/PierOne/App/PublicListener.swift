import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOSSL
import NIOTLS
import Runtime
import ServiceLifecycle

/// The gateway's public listener: plain HTTP/1.1, or with `HTTP_TLS_CERT` and `HTTP_TLS_KEY` TLS
/// 1.2+ offering HTTP/2 and HTTP/1.1 by ALPN, its certificate re-read while it runs (the service
/// returned with it). A connection (an HTTP/2 stream) that sends nothing for `HTTP_IDLE_TIMEOUT`
/// while no response is being written is closed (an HTTP/2 connection with no streams gets GOAWAY,
/// and is closed `goAwayCloseTimeout` later at the latest), and one that has not finished its TLS
/// handshake within `handshakeTimeout`: abandoned sockets cannot pile up.
func publicListener(_ configuration: ServeConfiguration, logger: Logger) throws -> (server: HTTPServerBuilder, services: [any Service]) {
    let idle: Duration? = configuration.idleTimeout > 0 ? .seconds(configuration.idleTimeout) : nil
    let http1 = HTTP1Channel.Configuration(idleTimeout: idle.map { TimeAmount($0) })
    // NIO's default reads (2 KiB growing to 64 KiB) here, not `LargeReadsChannel`: a connection
    // holds its last read buffer while a request head is incomplete, and anyone can open these.
    guard let settings = configuration.publicTLS else { return (.http1(configuration: http1), []) }
    let store = try CertificateStore(settings)
    let server: HTTPServerBuilder
    do {
        let tls = store.serverConfiguration()
        _ = try NIOSSLContext(configuration: tls)
        let channel = HTTP2UpgradeChannel.Configuration(
            idleTimeout: idle, gracefulCloseTimeout: .seconds(30), streamConfiguration: http1
        )
        server = HTTPServerBuilder { responder in
            GuardedTLSChannel(
                base: try HTTP2UpgradeChannel(tlsConfiguration: tls, configuration: channel, responder: responder),
                timeout: handshakeTimeout
            )
        }
    } catch {
        throw ConfigurationError("HTTP_TLS_CERT", "cannot use this certificate and key: \(error)")
    }
    logger.info(
        "TLS on the public listener, HTTP/2 and HTTP/1.1",
        metadata: [
            "certificate": "\(store.summary)",
            "clientCertificates": "\(settings.clientCAPath.map { "required, from \($0)" } ?? "not asked for")",
            "reloadInterval": "\(settings.reloadInterval)",
        ]
    )
    let reloader = CertificateReloader(store: store, logger: logger)
    reloader.warnIfExpiring()
    return (server, [reloader])
}

/// Checks the certificate files every `HTTP_TLS_RELOAD_INTERVAL`: a changed, usable pair is used
/// for every new connection from then on; a broken one is logged once and the previous one kept.
struct CertificateReloader: Service, CustomStringConvertible {
    var description: String { "CertificateReloader(\(self.store.settings.certificatePath))" }

    let store: CertificateStore
    let logger: Logger

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: self.store.settings.reloadInterval)
                    self.check()
                }
            }
        } catch is CancellationError {
            return
        }
    }

    func check() {
        switch self.store.reload() {
        case .unchanged:
            return
        case .replaced(let summary):
            self.logger.info("new TLS certificate in use for new connections", metadata: ["certificate": "\(summary)"])
            self.warnIfExpiring()
        case .pending(let problem):
            self.logger.info(
                "the TLS certificate files changed but do not make a usable pair yet (a renewal half-written?); checking again",
                metadata: ["problem": "\(problem)"]
            )
        case .refused(let problem):
            self.logger.error(
                "the TLS certificate files changed but cannot be used; the previous certificate stays in use",
                metadata: ["problem": "\(problem)", "certificate": "\(self.store.summary)"]
            )
        }
    }

    /// A warning when the certificate in use has expired or expires within a week.
    func warnIfExpiring() {
        let remaining = self.store.notValidAfter.timeIntervalSinceNow
        guard remaining < 7 * 86_400 else { return }
        self.logger.warning(
            remaining < 0 ? "the TLS certificate has expired: clients will refuse to connect" : "the TLS certificate expires within a week",
            metadata: ["certificate": "\(self.store.summary)", "file": "\(self.store.settings.certificatePath)"]
        )
    }
}

/// How long a client has to complete its TLS handshake.
let handshakeTimeout = TimeAmount.seconds(10)
/// How long an HTTP/2 connection stays open after the server sent GOAWAY (idle, or shutting down).
let goAwayCloseTimeout = TimeAmount.seconds(30)

/// A child channel whose socket reads take up to 256 KiB at once (NIO's default stops at 64 KiB
/// and starts again from 2 KiB): a blob the gateway streams to the blob service arrives in a few
/// large reads, each one trip through the pipeline and one hand-off to the handler instead of
/// dozens. Back-pressure bounds what waits for a slow handler: NIO's inbound stream stops reading
/// at ten parts and Hummingbird's body stream at four, so a connection holds at most about
/// 3.5 MiB of unread body. Only for the internal listeners, whose callers are the registry's own
/// processes: a connection keeps its last read buffer while a request head is incomplete, which on
/// a public port would let anyone hold 256 KiB per idle socket.
struct LargeReadsChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    static var allocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 64 << 10, maximum: 256 << 10)
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.setOption(.recvAllocator, value: Self.allocator).flatMap {
            self.base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await self.base.handle(value: value, logger: logger)
    }
}

/// A TLS child channel whose connections are watched by a `ConnectionGuard`.
struct GuardedTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let timeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        self.base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let operations = channel.pipeline.syncOperations
            let tls = try operations.handler(type: NIOSSLServerHandler.self)
            try operations.addHandler(ConnectionGuard(handshakeTimeout: self.timeout), position: .after(tls))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await self.base.handle(value: value, logger: logger)
    }
}

/// Sits right after TLS and closes what Hummingbird's timeouts leave open: a connection whose
/// handshake has not completed within `handshakeTimeout` (its idle timeout starts only once HTTP
/// runs), and an HTTP/2 connection still open `goAwayCloseTimeout` after the server sent GOAWAY
/// (Hummingbird closes an idle HTTP/2 connection only once the client acknowledges the PING sent
/// with the GOAWAY, which a client that ignores it never does). It reads the frame headers of the
/// server's own HTTP/2 output to see the GOAWAY; nothing the client sends is parsed.
final class ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let handshakeTimeout: TimeAmount
    private var deadline: Scheduled<Void>?
    private var handshakeDone = false
    /// Where the next outbound frame header starts: bytes of the current frame still to skip,
    /// and the part of a header split across writes.
    private var payloadLeft = 0
    private var header: [UInt8] = []
    private var goAwaySent = false

    init(handshakeTimeout: TimeAmount) {
        self.handshakeTimeout = handshakeTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.closeUnlessCancelled(context: context, in: self.handshakeTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        self.deadline = nil
    }

    private func closeUnlessCancelled(context: ChannelHandlerContext, in delay: TimeAmount) {
        let channel = context.channel
        self.deadline?.cancel()
        self.deadline = context.eventLoop.scheduleTask(in: delay) { channel.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Passed on first: the protocol negotiation after this handler waits for this event.
        context.fireUserInboundEventTriggered(event)
        guard case TLSUserEvent.handshakeCompleted(let negotiated) = event, !self.handshakeDone else { return }
        self.handshakeDone = true
        self.deadline?.cancel()
        self.deadline = nil
        if negotiated != "h2" {
            // HTTP/1.1: Hummingbird's idle timeout covers the connection from here on.
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if self.handshakeDone, !self.goAwaySent {
            self.scan(self.unwrapOutboundIn(data), context: context)
        }
        context.write(data, promise: promise)
    }

    /// Follows the server's HTTP/2 frames (9-byte header: length, type, flags, stream) through
    /// the outbound bytes; a GOAWAY (type 7) starts the close deadline.
    private func scan(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        var bytes = buffer.readableBytesView[...]
        while !bytes.isEmpty {
            if self.payloadLeft > 0 {
                let skipped = min(self.payloadLeft, bytes.count)
                self.payloadLeft -= skipped
                bytes = bytes.dropFirst(skipped)
                continue
            }
            let needed = 9 - self.header.count
            self.header += bytes.prefix(needed)
            bytes = bytes.dropFirst(needed)
            guard self.header.count == 9 else { return }
            self.payloadLeft = Int(self.header[0]) << 16 | Int(self.header[1]) << 8 | Int(self.header[2])
            let type = self.header[3]
            self.header = []
            if type == 7 {
                self.goAwaySent = true
                self.closeUnlessCancelled(context: context, in: goAwayCloseTimeout)
                return
            }
        }
    }
}

/// Whether an address only this machine can reach (a plain listener there is not a risk to tokens).
func isLoopback(_ address: String) -> Bool {
    address == "localhost" || address == "::1" || address.hasPrefix("127.")
}
