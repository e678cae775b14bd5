import AsyncHTTPClient
import Contracts
import Foundation
import Runtime

/// Authentication settings, from the environment (Pier One's variables where it had them).
package struct AuthSettings: Sendable {
    /// `HTTP_TOKENINFO_URL`: without it authentication is off.
    package var tokenInfoURL: String?
    /// `HTTP_TEAM_SERVICE_URL`: where a user's teams come from.
    package var teamServiceURL: String?
    /// `HTTP_ALLOW_PUBLIC_READ`: anonymous pulls.
    package var publicRead: Bool
    /// `AUTH_CACHE_SECONDS`: how long tokeninfo and team answers are reused.
    package var cacheSeconds: Int
    /// `AUTH_CACHE_SIZE`: entries each cache holds at most.
    package var cacheSize: Int

    package init(
        tokenInfoURL: String? = nil, teamServiceURL: String? = nil, publicRead: Bool = false, cacheSeconds: Int = 120,
        cacheSize: Int = 10_000
    ) {
        self.tokenInfoURL = tokenInfoURL
        self.teamServiceURL = teamServiceURL
        self.publicRead = publicRead
        self.cacheSeconds = cacheSeconds
        self.cacheSize = cacheSize
    }

    package static func from(_ environment: EnvironmentReader) throws -> AuthSettings {
        for variable in ["HTTP_TOKENINFO_URL", "HTTP_TEAM_SERVICE_URL"] {
            if let value = environment.string(variable), URL(string: value)?.scheme?.hasPrefix("http") != true {
                throw ConfigurationError(variable, "\"\(value)\" is not an http(s) URL")
            }
        }
        return AuthSettings(
            tokenInfoURL: environment.string("HTTP_TOKENINFO_URL"),
            teamServiceURL: environment.string("HTTP_TEAM_SERVICE_URL"),
            publicRead: try environment.bool("HTTP_ALLOW_PUBLIC_READ", default: false),
            cacheSeconds: try environment.integer("AUTH_CACHE_SECONDS", default: 120, range: 0...86_400),
            cacheSize: try environment.integer("AUTH_CACHE_SIZE", default: 10_000, range: 1...10_000_000)
        )
    }

    /// The authenticator these settings describe; nil when authentication is off.
    package func authenticator(http: HTTPClient) -> Authenticator? {
        guard let tokenInfoURL else { return nil }
        let lifetime = Duration.seconds(self.cacheSeconds)
        return Authenticator(
            tokenInfo: TokenInfoClient(
                url: tokenInfoURL, http: http, cache: ExpiringCache(lifetime: lifetime, capacity: self.cacheSize)
            ),
            teams: self.teamServiceURL.map {
                TeamClient(url: $0, http: http, cache: ExpiringCache(lifetime: lifetime, capacity: self.cacheSize))
            },
            rules: AccessRules(publicRead: self.publicRead)
        )
    }
}
