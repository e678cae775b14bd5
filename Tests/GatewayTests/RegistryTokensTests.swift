import Contracts
import Foundation
import JWTKit
import Testing

@testable import Gateway

@Suite struct RegistryTokensTests {
    static let secretA = String(repeating: "a", count: 32)
    static let secretB = String(repeating: "b", count: 32)
    static let pull = [TokenScope(type: "repository", name: "team/app", actions: ["pull"])]

    @Test func scopesParseNamesWithHostsAndColons() {
        #expect(TokenScope("repository:team/app:pull,push") == TokenScope(type: "repository", name: "team/app", actions: ["pull", "push"]))
        #expect(TokenScope("repository:localhost:5000/team/app:pull")?.name == "team/app")
        #expect(TokenScope("repository:registry.example.com/team/app:*")?.name == "team/app")
        #expect(TokenScope("registry:catalog:*") == TokenScope(type: "registry", name: "catalog", actions: ["*"]))
        #expect(TokenScope("repository") == nil)
        #expect(TokenScope("repository:pull") == nil)
    }

    @Test func issuedTokensVerifyAndGrantWhatTheySay() async throws {
        let tokens = await RegistryTokens(keys: [("a", Self.secretA)], service: "pierone", lifetime: 300)
        let token = try await tokens.issue(to: "alice", access: Self.pull)
        let claims = try #require(await tokens.verify(token))
        #expect(claims.sub.value == "alice")
        #expect(claims.access == Self.pull)
        let identity = Identity.token(subject: "alice", access: claims.access)
        let rules = AccessRules()
        #expect(rules.decide(identity, .pull, RepositoryName("team/app")) == .allow)
        #expect(rules.decide(identity, .push, RepositoryName("team/app")) == .insufficientScope)
        #expect(rules.decide(identity, .pull, RepositoryName("team/other")) == .insufficientScope)
    }

    @Test func keysRotate() async throws {
        let old = await RegistryTokens(keys: [("a", Self.secretA)], service: "pierone", lifetime: 300)
        let rotated = await RegistryTokens(keys: [("b", Self.secretB), ("a", Self.secretA)], service: "pierone", lifetime: 300)
        let retired = await RegistryTokens(keys: [("b", Self.secretB)], service: "pierone", lifetime: 300)
        let oldToken = try await old.issue(to: "alice", access: Self.pull)
        #expect(await rotated.verify(oldToken) != nil)
        #expect(await retired.verify(oldToken) == nil)
        #expect(await old.verify(try await rotated.issue(to: "alice", access: Self.pull)) == nil)
    }

    @Test func forgedExpiredAndForeignTokensAreRejected() async throws {
        let tokens = await RegistryTokens(keys: [("a", Self.secretA)], service: "pierone", lifetime: 60)
        let token = try await tokens.issue(to: "alice", access: Self.pull)
        // Tampered payload: grant push instead of pull, keep the signature.
        var parts = token.split(separator: ".").map(String.init)
        let payload = try #require(Data(base64Encoded: Self.padded(parts[1])))
        let forged = String(decoding: payload, as: UTF8.self).replacingOccurrences(of: "pull", with: "push")
        parts[1] = Data(forged.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        #expect(await tokens.verify(parts.joined(separator: ".")) == nil)
        // Expired.
        let expired = try await tokens.issue(to: "alice", access: Self.pull, now: Date().addingTimeInterval(-3600))
        #expect(await tokens.verify(expired) == nil)
        // Same key, another service.
        let other = await RegistryTokens(keys: [("a", Self.secretA)], service: "elsewhere", lifetime: 60)
        #expect(await tokens.verify(try await other.issue(to: "alice", access: Self.pull)) == nil)
        #expect(await tokens.verify("not-a-jwt") == nil)
    }

    static func padded(_ base64url: String) -> String {
        var value = base64url.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while value.count % 4 != 0 { value += "=" }
        return value
    }
}
