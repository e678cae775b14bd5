import Contracts
import Hummingbird
import Logging
import Registry
import Runtime

/// The public face of the registry: the OCI distribution API and the Pier One REST API over the
/// Registry layer (`RegistryService`), the OpenAPI document and the `/ui/` page. HTTP in, calls of
/// the layer, HTTP out: routing, parsing, authentication and rendering live here, decisions that
/// need metadata and blobs together in the layer.
///
/// The gateway never knows whether the two services run in this process or elsewhere.
package enum Gateway {
    /// The router with every public route and the error middleware.
    /// Without an `authenticator` every request is allowed (Pier One without `HTTP_TOKENINFO_URL`).
    package static func router(
        registry: RegistryService, authenticator: Authenticator? = nil, administration: (any GarbageAdministration)? = nil,
        ready: @escaping @Sendable () async -> Bool = { true }, logger: Logger = Logger(label: "pierone.gateway")
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
        RegistryController(registry: registry).register(on: router)
        PierOneAPIController(metadata: registry.metadata, ready: ready).register(on: router)
        GarbageAdminController(administration: administration, authenticated: authenticator != nil).register(on: router)
        StaticPages.register(on: router)
        return router
    }
}
