import Contracts
import Foundation
import HTTPTypes
import Testing

@testable import Gateway

/// The permission table: identity × action × repository → decision.
@Suite struct AccessRulesTests {
    static let employee = Identity.oauth(OAuthUser(uid: "alice", realm: "/employees", scopes: ["uid"]))
    static let service = Identity.oauth(OAuthUser(uid: "robot", realm: "/services", scopes: ["uid", "application.write"]))
    static let serviceWithoutWrite = Identity.oauth(OAuthUser(uid: "robot2", realm: "/services", scopes: ["uid"]))
    static let admin = Identity.oauth(OAuthUser(uid: "ci", realm: "/services", scopes: ["application.write_all"]))
    static let instance = Identity.instance(accountID: "123456789012")

    struct Row: CustomTestStringConvertible, Sendable {
        var identity: Identity
        var action: Action
        var repository: String?
        var publicRead = false
        var allowed: AccessDecision
        var testDescription: String { "\(self.identity.uid) \(self.action) \(self.repository ?? "catalog") → \(self.allowed)" }
    }

    static let rows: [Row] = [
        // Anyone valid may pull; anonymous only with public read, otherwise challenged.
        Row(identity: employee, action: .pull, repository: "other/app", allowed: .allow),
        Row(identity: service, action: .pull, repository: "other/app", allowed: .allow),
        Row(identity: .anonymous, action: .pull, repository: "team/app", allowed: .challenge),
        Row(identity: .anonymous, action: .pull, repository: "team/app", publicRead: true, allowed: .allow),
        Row(identity: .anonymous, action: .push, repository: "team/app", publicRead: true, allowed: .challenge),
        Row(identity: .anonymous, action: .delete, repository: "team/app", publicRead: true, allowed: .challenge),
        // Employees push and delete in their teams only; the team is the first path component.
        Row(identity: employee, action: .push, repository: "team/app", allowed: .allow),
        Row(identity: employee, action: .push, repository: "team/group/app", allowed: .allow),
        Row(identity: employee, action: .delete, repository: "team/app", allowed: .allow),
        Row(identity: employee, action: .push, repository: "other/app", allowed: .deny("")),
        Row(identity: employee, action: .push, repository: "other/team/app", allowed: .deny("")),
        Row(identity: employee, action: .delete, repository: "other/app", allowed: .deny("")),
        // Service users need application.write, then their team.
        Row(identity: service, action: .push, repository: "team/app", allowed: .allow),
        Row(identity: service, action: .push, repository: "other/app", allowed: .deny("")),
        Row(identity: serviceWithoutWrite, action: .push, repository: "team/app", allowed: .deny("")),
        // application.write_all pushes anywhere.
        Row(identity: admin, action: .push, repository: "other/app", allowed: .allow),
        Row(identity: admin, action: .delete, repository: "any/app", allowed: .allow),
        // Instances pull what their account is mapped to, and never write.
        Row(identity: instance, action: .pull, repository: "team/app", allowed: .allow),
        Row(identity: instance, action: .pull, repository: "other/app", allowed: .deny("")),
        Row(identity: instance, action: .push, repository: "team/app", allowed: .deny("")),
        Row(identity: instance, action: .pull, repository: nil, allowed: .deny("")),
        // Authentication off: everything.
        Row(identity: .unrestricted, action: .delete, repository: "other/app", allowed: .allow),
    ]

    @Test(arguments: rows)
    func decision(_ row: Row) {
        let rules = AccessRules(publicRead: row.publicRead, instanceAccess: ["123456789012": [Glob("team/**")]])
        let repository = row.repository.map { RepositoryName($0)! }
        let decision = rules.decide(row.identity, row.action, repository, teams: ["team"])
        switch (decision, row.allowed) {
        case (.deny(let reason), .deny):
            #expect(!reason.isEmpty)
        default:
            #expect(decision == row.allowed)
        }
    }

    @Test func namesThatTryToEscapeTheirTeamAreNotNames() {
        for name in ["team/../other", "TEAM/app", "team/./app", "team//app", "team/app/..", "/other/app"] {
            #expect(RepositoryName(name) == nil, "\(name)")
        }
        #expect(RepositoryName("other/team/app")?.team == "other")
    }

    @Test func teamsUnknownMeansNoPush() {
        #expect(AccessRules().decide(Self.employee, .push, RepositoryName("team/app"), teams: nil) != .allow)
    }

    @Test func credentialsFromTheAuthorizationHeader() {
        func basic(_ value: String) -> String { "Basic " + Data(value.utf8).base64EncodedString() }
        #expect(Credentials(authorization: basic("oauth2:abc")) == .oauthToken("abc"))
        #expect(Credentials(authorization: basic("instance-identity-document:MIIB")) == .instanceIdentity(pkcs7: "MIIB"))
        #expect(Credentials(authorization: "Bearer xyz") == .bearer("xyz"))
        // Unreadable credentials are refused (401), not taken for anonymous: `docker login` with a
        // wrong user name must fail.
        #expect(Credentials(authorization: basic("someone:abc")) == .unrecognized)
        #expect(Credentials(authorization: basic("oauth2:")) == .unrecognized)
        #expect(Credentials(authorization: "Basic !!!") == .unrecognized)
        #expect(Credentials(authorization: "Digest abc") == .unrecognized)
        #expect(Credentials(authorization: "Bearer ") == .unrecognized)
        #expect(Credentials(authorization: "Bearer") == .unrecognized)
        #expect(Credentials(authorization: nil) == nil)
    }

    @Test func requirementsOfRoutes() {
        let name = RepositoryName("team/app")!
        #expect(Requirement(.base, method: .get) == .authenticated)
        #expect(Requirement(.catalog, method: .get) == .access(.pull, nil))
        #expect(Requirement(.manifest(name, reference: "1"), method: .head) == .access(.pull, name))
        #expect(Requirement(.manifest(name, reference: "1"), method: .put) == .access(.push, name))
        #expect(Requirement(.manifest(name, reference: "1"), method: .delete) == .access(.delete, name))
        #expect(Requirement(.blob(name, digest: "d"), method: .delete) == .access(.delete, name))
        #expect(Requirement(.upload(name, id: "u"), method: .get) == .access(.push, name))
        #expect(Requirement(.upload(name, id: "u"), method: .delete) == .access(.push, name))
        #expect(Requirement(.referrers(name, digest: "d"), method: .get) == .access(.pull, name))
    }

    @Test func cacheExpiresAndStaysBounded() async throws {
        let cache = ExpiringCache<String, Int>(lifetime: .milliseconds(50), capacity: 3)
        await cache.store(1, for: "a")
        #expect(await cache.value(for: "a") == 1)
        for key in ["b", "c", "d", "e"] { await cache.store(0, for: key) }
        #expect(await cache.count <= 3)
        try await Task.sleep(for: .milliseconds(80))
        #expect(await cache.value(for: "e") == nil)
    }
}
