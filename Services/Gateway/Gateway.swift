import Contracts
import Hummingbird

/// The public face of the registry: the OCI distribution API over `MetadataAPI` and `BlobAPI`.
///
/// The gateway never knows whether the two services run in this process or elsewhere.
package enum Gateway {
    /// The router with every public route and the error middleware.
    package static func router(metadata: any MetadataAPI, blobs: any BlobAPI) -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        router.add(middleware: RegistryErrorMiddleware())
        RegistryController(metadata: metadata, blobs: blobs).register(on: router)
        return router
    }
}
