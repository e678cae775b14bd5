import Contracts
import Foundation
import Hummingbird

/// `GET /v2/token` (Basic credentials) and `POST /v2/token` (OAuth2 form) of the Docker token
/// protocol. The token grants the intersection of the scopes asked for and what the rules allow;
/// a partial grant is not an error.
struct TokenController: Sendable {
    let authenticator: Authenticator
    let tokens: RegistryTokens

    func register(on router: Router<GatewayRequestContext>) {
        router.get("/v2/token") { request, context in
            let query = request.uri.queryParameters
            return try await self.issue(
                credentials: Credentials(authorization: request.headers[.authorization]),
                scopes: query[values: "scope"].flatMap { $0.split(separator: " ") }.compactMap(TokenScope.init),
                request: request, context: context
            )
        }
        router.post("/v2/token") { request, context in
            let form = try await request.body.collect(upTo: 64 * 1024)
            let fields = Self.formFields(String(buffer: form))
            guard fields["grant_type"] == "password" else {
                throw RegistryError(.parameterInvalid, "grant_type must be password")
            }
            let credentials: Credentials? = switch (fields["username"], fields["password"]) {
            case ("oauth2", let password?) where !password.isEmpty: .oauthToken(password)
            case ("instance-identity-document", let password?) where !password.isEmpty: .instanceIdentity(pkcs7: password)
            default: nil
            }
            guard let credentials else {
                throw RegistryError(.unauthorized, "username must be oauth2 and password a token")
            }
            return try await self.issue(
                credentials: credentials,
                scopes: (fields["scope"] ?? "").split(separator: " ").compactMap(TokenScope.init),
                request: request, context: context
            )
        }
    }

    private func issue(credentials: Credentials?, scopes: [TokenScope], request: Request, context: GatewayRequestContext)
        async throws -> Response
    {
        guard let (identity, token) = try await self.authenticator.identify(credentials) else {
            return self.refusal("the credentials are not valid")
        }
        if case .token = identity {
            // A registry token is not a login: renewing it would let access outlive the OAuth2
            // token, team membership or instance identity it was issued for. Clients log in again.
            return self.refusal("a registry token cannot be exchanged for another; log in with an OAuth2 token or an instance identity")
        }
        var granted: [TokenScope] = []
        for scope in scopes {
            var actions: [String] = []
            for action in scope.actions {
                if try await self.allows(identity, token: token, scope: scope, action: action) {
                    actions.append(action)
                }
            }
            if !actions.isEmpty {
                granted.append(TokenScope(type: scope.type, name: scope.name, actions: actions))
            }
        }
        let now = Date()
        let signed = try await self.tokens.issue(to: identity.uid, access: granted, now: now)
        struct Answer: Encodable {
            var token: String
            var access_token: String
            var expires_in: Int
            var issued_at: String
        }
        return try ListingHandlers.json(Answer(
            token: signed, access_token: signed, expires_in: self.tokens.lifetime,
            issued_at: ISO8601DateFormatter().string(from: now)
        ))
    }

    private func refusal(_ message: String) -> Response {
        var response = RegistryErrorRenderer.render(RegistryError(.unauthorized, message))
        response.headers[.wwwAuthenticate] = "Basic realm=\"\(self.authenticator.realm)\""
        return response
    }

    private func allows(_ identity: Identity, token: String?, scope: TokenScope, action: String) async throws -> Bool {
        let requirement: Requirement
        switch (scope.type, action) {
        case ("registry", "*") where scope.name == "catalog":
            requirement = .access(.pull, nil)
        case ("repository", let name):
            guard let repository = RepositoryName(scope.name), let action = Action(rawValue: name == "*" ? "delete" : name)
            else { return false }
            requirement = .access(action, repository)
        default:
            return false
        }
        return try await self.authenticator.decide(requirement, for: identity, token: token) == .allow
    }

    /// `application/x-www-form-urlencoded` fields.
    static func formFields(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (value: Substring) in
                value.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(value)
            }
            fields[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }
}
