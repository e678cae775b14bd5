import Contracts
import Hummingbird
import Logging

/// Authenticates every `/v2/` and Pier One API request, decides it with `AccessRules`, and records
/// the caller in the request context. 401 answers carry a challenge so clients log in; 403 says why.
/// Successful pushes and deletes are logged with the caller's uid (never a token).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let authenticator: Authenticator

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let requirement: Requirement
        if let route = try? RegistryRoute(path: request.uri.path) {
            requirement = Requirement(route, method: request.method)
        } else if let route = try? PierOneRoute(path: request.uri.path) {
            requirement = route.requirement
        } else if request.uri.path.split(separator: "/").first == "gc" {
            // The router ignores empty path components (`//gc/run`, `/gc/run/`): whatever reaches
            // the administration is authenticated as it.
            requirement = .administer
        } else {
            return try await next(request, context)
        }
        let credentials = Credentials(authorization: request.headers[.authorization])
        guard let (identity, token) = try await self.authenticator.identify(credentials) else {
            return self.challenge(requirement, request, message: "the credentials are not valid")
        }
        switch try await self.authenticator.decide(requirement, for: identity, token: token) {
        case .challenge:
            return self.challenge(requirement, request, message: "authentication required")
        case .insufficientScope:
            return self.challenge(requirement, request, message: "the token does not grant this", insufficientScope: true)
        case .deny(let reason):
            throw RegistryError(.denied, reason)
        case .allow:
            break
        }
        var context = context
        context.identity = identity
        let rules = self.authenticator.rules
        context.mayPull = { rules.decide(identity, .pull, $0) == .allow }
        let response = try await next(request, context)
        if case .access(let action, let repository?) = requirement, action != .pull,
           response.status == .created || (action == .delete && response.status == .accepted)
        {
            context.logger.info(
                "\(action.rawValue)",
                metadata: ["uid": "\(identity.uid)", "repository": "\(repository)", "path": "\(request.uri.path)"]
            )
        }
        return response
    }

    private func challenge(
        _ requirement: Requirement, _ request: Request, message: String, insufficientScope: Bool = false
    ) -> Response {
        var response = RegistryErrorRenderer.render(RegistryError(.unauthorized, message), head: request.method == .head)
        response.headers[.wwwAuthenticate] = self.authenticator.challenge(
            for: requirement, request: request, insufficientScope: insufficientScope
        )
        return response
    }
}
