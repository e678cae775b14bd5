import Contracts
import Hummingbird
import NIOCore
import Runtime

/// The request context of the public registry API, carrying the authenticated caller.
package struct GatewayRequestContext: EventLoopAwareContext {
    package var coreContext: CoreRequestContextStorage
    package let eventLoop: (any EventLoop)?
    /// Who is calling; `.unrestricted` while authentication is off.
    package var identity: Identity = .unrestricted
    /// Whether the caller may pull a repository (a mount needs pull on its source).
    package var mayPull: @Sendable (RepositoryName) -> Bool = { _ in true }
    /// The peer's IP address (the front's, behind a proxy).
    package let remoteAddress: String?

    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.eventLoop = source.channel.eventLoop
        self.remoteAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Whom open upload sessions are counted against: the caller's identity, or its address when
    /// there is none (anonymous, or authentication off).
    package var client: String {
        switch self.identity {
        case .anonymous, .unrestricted: "address:\(self.remoteAddress ?? "unknown")"
        case .oauth, .instance, .token: "uid:\(self.identity.uid)"
        }
    }

    /// Request bodies read whole (manifests) may be a little over the 4 MiB manifest limit so the
    /// limit itself can answer with a clear error.
    package var maxUploadSize: Int { 8 * 1024 * 1024 }
}
