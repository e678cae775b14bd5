import Contracts
import Hummingbird
import Logging
import Registry
import Runtime

/// The public face of the registry: the OCI distribution API and the Pier One REST API over
/// `MetadataAPI` and `BlobAPI`, the OpenAPI document and the `/ui/` page.
///
/// The gateway never knows whether the two services run in this process or elsewhere.
package enum Gateway {
    /// The router with every public route and the error middleware.
    /// Without an `authenticator` every request is allowed (Pier One without `HTTP_TOKENINFO_URL`).
    /// `scanner` (a service the caller runs) reads pushed layers for `scm-source.json`; nil to not look.
    package static func router(
        metadata: any MetadataAPI, blobs: any BlobAPI, authenticator: Authenticator? = nil,
        ready: @escaping @Sendable () async -> Bool = { true }, scanner: ScmSourceScanner? = nil,
        logger: Logger = Logger(label: "pierone.gateway")
    ) -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        router.add(middleware: MetricsMiddleware(service: "gateway") { RouteTemplates.gateway($0.uri.path) })
        router.add(middleware: RequestIDMiddleware())
        HealthRoutes.register(on: router, ready: ready)
        ServiceMetrics.register(on: router)
        router.add(middleware: RegistryErrorMiddleware())
        if let authenticator {
            router.add(middleware: AuthMiddleware(authenticator: authenticator))
            if let tokens = authenticator.tokens {
                TokenController(authenticator: authenticator, tokens: tokens).register(on: router)
            }
        }
        RegistryController(metadata: metadata, blobs: blobs, scanner: scanner).register(on: router)
        PierOneAPIController(metadata: metadata, ready: ready).register(on: router)
        StaticPages.register(on: router)
        return router
    }
}
