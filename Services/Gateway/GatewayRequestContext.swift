import Hummingbird

/// The request context of the public registry API. Authentication (a later step) adds the
/// caller's identity here.
package struct GatewayRequestContext: RequestContext {
    package var coreContext: CoreRequestContextStorage

    package init(source: Source) {
        self.coreContext = .init(source: source)
    }

    /// Request bodies read whole (manifests) may be a little over the 4 MiB manifest limit so the
    /// limit itself can answer with a clear error.
    package var maxUploadSize: Int { 8 * 1024 * 1024 }
}
