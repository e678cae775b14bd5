import Contracts
import JWTKit
import Logging

/// Establishes who is calling and decides what they may do, with tokeninfo and the team service.
package struct Authenticator: Sendable {
    let tokenInfo: TokenInfoClient
    let teams: TeamClient?
    package let rules: AccessRules
    /// `WWW-Authenticate` realm of the Basic challenge.
    let realm: String
    /// The token flow, when `TOKEN_SIGNING_KEYS` is set: challenges become Bearer.
    package let tokens: RegistryTokens?
    /// `HTTP_PUBLIC_URL`: how clients reach this registry, for the token realm.
    let publicURL: String?
    /// Whether this port is HTTPS itself (`HTTP_TLS_CERT`).
    let servesTLS: Bool
    /// EC2 instance identity verification, when `IID_CERTIFICATES_FILE` is set.
    let instances: InstanceIdentityVerifier?
    /// `TOKENINFO_REALMS`: the tokeninfo realms whose tokens are accepted.
    let realms: Set<String>

    package init(
        tokenInfo: TokenInfoClient, teams: TeamClient?, rules: AccessRules, tokens: RegistryTokens? = nil,
        publicURL: String? = nil, servesTLS: Bool = false, instances: InstanceIdentityVerifier? = nil, realm: String = "Pier One",
        realms: Set<String> = AuthSettings.defaultRealms
    ) {
        self.realms = realms
        self.instances = instances
        self.tokenInfo = tokenInfo
        self.teams = teams
        self.rules = rules
        self.tokens = tokens
        self.publicURL = publicURL
        self.servesTLS = servesTLS
        self.realm = realm
    }

    /// The caller behind `credentials`: `.anonymous` without credentials, nil when they are not
    /// valid. Throws 503 when tokeninfo cannot answer.
    func identify(_ credentials: Credentials?) async throws -> (identity: Identity, token: String?)? {
        switch credentials {
        case nil:
            return (.anonymous, nil)
        case .unrecognized:
            return nil
        case .bearer(let token):
            if let claims = await self.tokens?.verify(token) {
                return (.token(subject: claims.sub.value, access: claims.access), nil)
            }
            guard let user = try await self.tokenInfo.user(for: token) else { return nil }
            return (.oauth(try self.admitted(user)), token)
        case .oauthToken(let token):
            guard let user = try await self.tokenInfo.user(for: token) else { return nil }
            return (.oauth(try self.admitted(user)), token)
        case .instanceIdentity(let pkcs7):
            guard let document = try? self.instances?.verify(pkcs7) else { return nil }
            return (.instance(accountID: document.accountId), nil)
        }
    }

    /// The user, when their tokeninfo realm is allow-listed (`TOKENINFO_REALMS`); else 403: a
    /// `/customers` token is a valid token, but not one of this company's people or services.
    private func admitted(_ user: OAuthUser) throws(RegistryError) -> OAuthUser {
        guard self.realms.contains(user.realm) else {
            throw RegistryError(
                .denied, "tokens of the realm \(user.realm) are not accepted here", detail: ["realm": user.realm]
            )
        }
        return user
    }

    /// Decides `requirement` for `identity`, asking the team service only when the rules need it.
    func decide(_ requirement: Requirement, for identity: Identity, token: String?) async throws -> AccessDecision {
        switch requirement {
        case .authenticated:
            // The ping always challenges anonymous callers, public read or not: it is where Docker
            // and containers/image learn how to log in, so that they send credentials for a push.
            return identity == .anonymous ? .challenge : .allow
        case .administer:
            switch identity {
            case .unrestricted: return .allow
            case .anonymous: return .challenge
            case .oauth(let user) where user.scopes.contains(AccessRules.writeAllScope): return .allow
            default: return .deny("garbage collection and retention need the scope \(AccessRules.writeAllScope)")
            }
        case .access(let action, let repository):
            var teams: [String]?
            if case .oauth(let user) = identity, action != .pull, !user.scopes.contains(AccessRules.writeAllScope),
               let teamClient = self.teams, let token
            {
                teams = try await teamClient.teams(of: user.uid, token: token)
            }
            return self.rules.decide(identity, action, repository, teams: teams)
        }
    }
}
