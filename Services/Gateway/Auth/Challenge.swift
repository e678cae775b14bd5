import Hummingbird

extension Authenticator {
    /// The `WWW-Authenticate` value of a 401: Bearer with the token realm, service and the scope
    /// the request needs when the token flow is on (what Docker and containerd prefer), Basic
    /// otherwise. Basic credentials stay accepted either way.
    func challenge(for requirement: Requirement, request: Request, insufficientScope: Bool = false) -> String {
        guard let tokens = self.tokens else {
            return "Basic realm=\"\(self.realm)\""
        }
        var value = "Bearer realm=\"\(self.baseURL(of: request))/v2/token\",service=\"\(tokens.service)\""
        if let scope = TokenScope.needed(for: requirement) {
            value += ",scope=\"\(scope.description)\""
        }
        if insufficientScope {
            value += ",error=\"insufficient_scope\""
        }
        return value
    }

    /// `HTTP_PUBLIC_URL`, or the scheme (`https` when this port is TLS, else `X-Forwarded-Proto`)
    /// and `Host` the client used.
    func baseURL(of request: Request) -> String {
        if let publicURL { return publicURL }
        let scheme = self.servesTLS || request.headers[.forwardedProto] == "https" ? "https" : "http"
        let host = request.head.authority ?? "localhost"
        let safe = host.allSatisfy { $0.isLetter || $0.isNumber || ".-:[]".contains($0) } ? host : "localhost"
        return "\(scheme)://\(safe)"
    }
}
