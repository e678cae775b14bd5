import Contracts
import Foundation
import JWTKit

/// The claims of a registry token: who it was issued to and what it grants.
struct RegistryTokenClaims: JWTPayload {
    var iss: IssuerClaim
    var sub: SubjectClaim
    var aud: AudienceClaim
    var exp: ExpirationClaim
    var nbf: NotBeforeClaim
    var iat: IssuedAtClaim
    var jti: IDClaim
    var access: [TokenScope]

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try self.exp.verifyNotExpired()
        try self.nbf.verifyNotBefore()
    }
}

/// Issues and verifies the short-lived registry tokens of the Docker token flow (`/v2/token`),
/// HMAC-SHA256 signed JWTs that every gateway replica verifies locally.
///
/// Keys rotate: `TOKEN_SIGNING_KEYS` lists `kid=secret` pairs; the first signs, every one verifies.
/// Add a new key in front, and drop the old one once the tokens it signed have expired.
package struct RegistryTokens: Sendable {
    static let issuer = "pierone"

    let keys: JWTKeyCollection
    let signingKey: JWKIdentifier
    /// The `service` of challenges and the `aud` of tokens.
    package let service: String
    /// Seconds a token is valid.
    package let lifetime: Int

    /// Keys as `(kid, secret)`, the first one signing.
    package init(keys: [(String, String)], service: String, lifetime: Int) async {
        let collection = JWTKeyCollection()
        for (kid, secret) in keys {
            await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: JWKIdentifier(string: kid))
        }
        self.keys = collection
        self.signingKey = JWKIdentifier(string: keys.first?.0 ?? "")
        self.service = service
        self.lifetime = lifetime
    }

    /// A signed token for `subject` granting `access`.
    func issue(to subject: String, access: [TokenScope], now: Date = Date()) async throws -> String {
        let claims = RegistryTokenClaims(
            iss: IssuerClaim(value: Self.issuer), sub: SubjectClaim(value: subject), aud: AudienceClaim(value: self.service),
            exp: ExpirationClaim(value: now.addingTimeInterval(TimeInterval(self.lifetime))),
            nbf: NotBeforeClaim(value: now.addingTimeInterval(-5)), iat: IssuedAtClaim(value: now),
            jti: IDClaim(value: UUID().uuidString), access: access
        )
        return try await self.keys.sign(claims, kid: self.signingKey)
    }

    /// The claims of a valid token issued here for this service; nil for anything else
    /// (another issuer's JWT, a forged or expired token, a plain OAuth2 token).
    func verify(_ token: String) async -> RegistryTokenClaims? {
        guard token.split(separator: ".").count == 3,
              let claims = try? await self.keys.verify(token, as: RegistryTokenClaims.self),
              claims.iss.value == Self.issuer, claims.aud.value.contains(self.service)
        else { return nil }
        return claims
    }
}
