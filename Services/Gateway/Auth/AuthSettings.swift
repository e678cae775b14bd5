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
    /// `TOKEN_SIGNING_KEYS`: `kid=secret,…`; enables the Docker token flow (first key signs).
    package var tokenKeys: [(String, String)]
    /// `TOKEN_SERVICE`: the `service` of the token flow.
    package var tokenService: String
    /// `TOKEN_LIFETIME`: seconds a registry token is valid.
    package var tokenLifetime: Int
    /// `HTTP_PUBLIC_URL`: how clients reach the registry (token realm); else taken from `Host`.
    package var publicURL: String?
    /// `IID_CERTIFICATES_FILE`: AWS's public certificates (PEM) for instance identity documents.
    package var instanceCertificates: Data?
    /// `IID_MAX_AGE`: seconds after the instance's `pendingTime` its document is still accepted.
    package var instanceMaximumAge: Int
    /// `IID_ACCOUNTS`: `account=pattern,…`, the repositories instances of an account may pull.
    package var instanceAccess: [String: [Glob]]
    /// `TOKENINFO_REALMS`: tokeninfo realms whose tokens are accepted; others get 403.
    package var realms: Set<String>
    /// Whether the gateway's own port serves HTTPS (`HTTP_TLS_CERT`): the token realm is then
    /// `https` whatever the request says.
    package var servesTLS = false
    package static let defaultRealms: Set<String> = ["/employees", "/services"]

    package init(
        tokenInfoURL: String? = nil, teamServiceURL: String? = nil, publicRead: Bool = false, cacheSeconds: Int = 120,
        cacheSize: Int = 10_000, tokenKeys: [(String, String)] = [], tokenService: String = "pierone",
        tokenLifetime: Int = 300, publicURL: String? = nil, instanceCertificates: Data? = nil,
        instanceMaximumAge: Int = 31_536_000, instanceAccess: [String: [Glob]] = [:],
        realms: Set<String> = AuthSettings.defaultRealms
    ) {
        self.realms = realms
        self.instanceCertificates = instanceCertificates
        self.instanceMaximumAge = instanceMaximumAge
        self.instanceAccess = instanceAccess
        self.tokenInfoURL = tokenInfoURL
        self.teamServiceURL = teamServiceURL
        self.publicRead = publicRead
        self.cacheSeconds = cacheSeconds
        self.cacheSize = cacheSize
        self.tokenKeys = tokenKeys
        self.tokenService = tokenService
        self.tokenLifetime = tokenLifetime
        self.publicURL = publicURL
    }

    package static func from(_ environment: EnvironmentReader) throws -> AuthSettings {
        for variable in ["HTTP_TOKENINFO_URL", "HTTP_TEAM_SERVICE_URL"] {
            if let value = environment.string(variable), URL(string: value)?.scheme?.hasPrefix("http") != true {
                throw ConfigurationError(variable, "\"\(value)\" is not an http(s) URL")
            }
        }
        var keys: [(String, String)] = []
        for entry in (environment.string("TOKEN_SIGNING_KEYS") ?? "").split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty, parts[1].utf8.count >= 32 else {
                throw ConfigurationError("TOKEN_SIGNING_KEYS", "expected kid=secret pairs with secrets of at least 32 characters")
            }
            keys.append((String(parts[0]), String(parts[1])))
        }
        if let publicURL = environment.string("HTTP_PUBLIC_URL"), URL(string: publicURL)?.host == nil {
            throw ConfigurationError("HTTP_PUBLIC_URL", "\"\(publicURL)\" is not a URL such as https://registry.example.com")
        }
        var certificates: Data?
        if let file = environment.string("IID_CERTIFICATES_FILE") {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigurationError("IID_CERTIFICATES_FILE", "cannot read \(file)")
            }
            guard (try? InstanceIdentityVerifier(certificatesPEM: data, maximumAge: 0)) != nil else {
                throw ConfigurationError("IID_CERTIFICATES_FILE", "\(file) holds no PEM certificate")
            }
            certificates = data
        }
        var access: [String: [Glob]] = [:]
        for entry in (environment.string("IID_ACCOUNTS") ?? "").split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts[0].count == 12, parts[0].allSatisfy(\.isNumber), !parts[1].isEmpty else {
                throw ConfigurationError("IID_ACCOUNTS", "expected account=pattern pairs such as 123456789012=team/**")
            }
            access[parts[0], default: []].append(Glob(parts[1]))
        }
        var realms = AuthSettings.defaultRealms
        if let list = environment.string("TOKENINFO_REALMS") {
            realms = Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
            guard !realms.isEmpty, realms.allSatisfy({ $0.hasPrefix("/") }) else {
                throw ConfigurationError("TOKENINFO_REALMS", "expected realms such as /employees,/services")
            }
        }
        return AuthSettings(
            tokenInfoURL: environment.string("HTTP_TOKENINFO_URL"),
            teamServiceURL: environment.string("HTTP_TEAM_SERVICE_URL"),
            publicRead: try environment.bool("HTTP_ALLOW_PUBLIC_READ", default: false),
            cacheSeconds: try environment.integer("AUTH_CACHE_SECONDS", default: 120, range: 0...86_400),
            cacheSize: try environment.integer("AUTH_CACHE_SIZE", default: 10_000, range: 1...10_000_000),
            tokenKeys: keys,
            tokenService: environment.string("TOKEN_SERVICE", default: "pierone"),
            tokenLifetime: try environment.integer("TOKEN_LIFETIME", default: 300, range: 60...86_400),
            publicURL: environment.string("HTTP_PUBLIC_URL").map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 },
            instanceCertificates: certificates,
            instanceMaximumAge: try environment.integer("IID_MAX_AGE", default: 31_536_000, range: 60...315_360_000),
            instanceAccess: access,
            realms: realms
        )
    }

    /// The authenticator these settings describe; nil when authentication is off.
    package func authenticator(http: HTTPClient) async -> Authenticator? {
        guard let tokenInfoURL else { return nil }
        let tokens: RegistryTokens? = self.tokenKeys.isEmpty
            ? nil : await RegistryTokens(keys: self.tokenKeys, service: self.tokenService, lifetime: self.tokenLifetime)
        let lifetime = Duration.seconds(self.cacheSeconds)
        return Authenticator(
            tokenInfo: TokenInfoClient(
                url: tokenInfoURL, http: http, cache: ExpiringCache(lifetime: lifetime, capacity: self.cacheSize)
            ),
            teams: self.teamServiceURL.map {
                TeamClient(url: $0, http: http, cache: ExpiringCache(lifetime: lifetime, capacity: self.cacheSize))
            },
            rules: AccessRules(publicRead: self.publicRead, instanceAccess: self.instanceAccess),
            tokens: tokens,
            publicURL: self.publicURL, servesTLS: self.servesTLS,
            instances: self.instanceCertificates.flatMap {
                try? InstanceIdentityVerifier(certificatesPEM: $0, maximumAge: TimeInterval(self.instanceMaximumAge))
            },
            realms: self.realms
        )
    }
}
