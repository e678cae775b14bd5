import Contracts
import Foundation
import Hummingbird
import Logging
import Runtime

/// Renders every failure as the OCI error envelope `{"errors":[{"code","message","detail"}]}` and
/// stamps `Docker-Distribution-API-Version` on every `/v2/` response, errors included.
/// Errors that are not `RegistryError` become 500 `UNKNOWN`; their cause goes only to the log.
struct RegistryErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = RegistryErrorRenderer.render(
                ErrorMapping.registryError(error, logger: context.logger), head: request.method == .head
            )
        }
        if request.uri.path.hasPrefix("/v2") {
            response.headers[.dockerDistributionAPIVersion] = RegistryProtocol.apiVersion
        }
        return response
    }
}
