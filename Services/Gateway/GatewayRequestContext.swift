import Contracts
import Hummingbird

/// The request context of the public registry API, carrying the authenticated caller.
package struct GatewayRequestContext: RequestContext {
    package var coreContext: CoreRequestContextStorage
    /// Who is calling; `.unrestricted` while authentication is off.
    package var identity: Identity = .unrestricted
    /// Whether the caller may pull a repository (a mount needs pull on its source).
    package var mayPull: @Sendable (RepositoryName) -> Bool = { _ in true }

    package init(source: Source) {
        self.coreContext = .init(source: source)
    }

    /// Request bodies read whole (manifests) may be a little over the 4 MiB manifest limit so the
    /// limit itself can answer with a clear error.
    package var maxUploadSize: Int { 8 * 1024 * 1024 }
}
