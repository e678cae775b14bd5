import Contracts
import Foundation
import Hummingbird
import Logging

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
        } catch let error as RegistryError {
            response = RegistryErrorRenderer.render(error, head: request.method == .head)
        } catch let error as HTTPError {
            response = RegistryErrorRenderer.render(Self.translate(error), head: request.method == .head)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            response = RegistryErrorRenderer.render(RegistryError(.unknown), head: request.method == .head)
        }
        if request.uri.path.hasPrefix("/v2") {
            response.headers[.dockerDistributionAPIVersion] = RegistryProtocol.apiVersion
        }
        return response
    }

    static func translate(_ error: HTTPError) -> RegistryError {
        switch error.status {
        case .notFound: RegistryError(.unsupported, "no such registry resource", status: 404)
        case .methodNotAllowed: RegistryError(.unsupported, "method not allowed on this resource")
        case .contentTooLarge: RegistryError(.sizeInvalid, "request body too large", status: 413)
        default: RegistryError(.unknown, error.body ?? error.status.reasonPhrase, status: error.status.code)
        }
    }
}
