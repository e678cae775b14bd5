import Hummingbird
import NIOCore

/// A request context that knows the event loop of its connection, so that a long response can
/// wait for the connection to take each buffer (`ResponsePacing`).
package protocol EventLoopAwareContext: RequestContext {
    /// The connection's event loop; nil where the context was made without a channel.
    var eventLoop: (any EventLoop)? { get }
}

/// The request context of the internal services' routers.
package struct InternalRequestContext: EventLoopAwareContext {
    package var coreContext: CoreRequestContextStorage
    package let eventLoop: (any EventLoop)?

    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.eventLoop = source.channel.eventLoop
    }
}

/// Keeps a streamed response from running ahead of its connection.
///
/// A response body writer accepts a buffer as long as the channel last said it was writable; the
/// buffer reaches the channel later, on its event loop. A producer faster than the connection
/// (a file read from the page cache, written to a TLS connection that encrypts every byte) can
/// queue many buffers before the channel says it is full: in a 1 GiB pull that was up to ~100 MiB
/// more resident memory. Waiting for the event loop after each buffer means the channel has taken
/// it and its writability is current, so at most one buffer waits beyond the channel's own limit.
package enum ResponsePacing {
    /// Returns once `eventLoop` has run everything queued on it before this call.
    package static func caughtUp(_ eventLoop: (any EventLoop)?) async throws {
        guard let eventLoop, !eventLoop.inEventLoop else { return }
        try await eventLoop.submit {}.get()
    }
}
