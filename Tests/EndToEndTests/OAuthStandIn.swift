import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization

/// A small real HTTP server standing in for the OAuth2 tokeninfo endpoint and the team service,
/// which cannot run here. It knows a fixed set of tokens and counts the lookups it answers.
final class OAuthStandIn: Sendable {
    struct User: Sendable {
        var uid: String
        var realm: String
        var scopes: [String]
        var teams: [String]
    }

    static let users: [String: User] = [
        "employee-token": User(uid: "alice", realm: "/employees", scopes: ["uid"], teams: ["team"]),
        "service-token": User(uid: "stups_robot", realm: "/services", scopes: ["uid", "application.write"], teams: ["team"]),
        "service-without-write": User(uid: "robot2", realm: "/services", scopes: ["uid"], teams: ["team"]),
        "admin-token": User(uid: "deployer", realm: "/services", scopes: ["application.write_all"], teams: []),
        "trusted-token": User(
            uid: "ci", realm: "/services", scopes: ["application.write", "application.write_all_trusted"], teams: ["team"]
        ),
        "customer-token": User(uid: "shopper", realm: "/customers", scopes: ["uid"], teams: []),
        "bob-token": User(uid: "bob", realm: "/employees", scopes: ["uid"], teams: ["team"]),
    ]

    /// Tokens for which tokeninfo fails with 500 (an outage).
    static let outageToken = "outage-token"

    let tokenInfoCalls = Mutex(0)
    let teamCalls = Mutex(0)
    /// Tokens tokeninfo no longer accepts (revoked).
    let revoked = Mutex<Set<String>>([])
    /// Users the team service no longer lists in any team.
    let removedFromTeams = Mutex<Set<String>>([])
    /// How long tokeninfo takes to answer (to overlap concurrent lookups).
    let delay = Mutex<Duration>(.zero)

    /// Runs the stand-in on a free port for the duration of `body`, passing its base URL.
    func run<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let router = Router()
        router.get("/oauth2/tokeninfo") { request, _ -> Response in
            self.tokenInfoCalls.withLock { $0 += 1 }
            let token = request.uri.queryParameters["access_token"].map(String.init) ?? ""
            if token == Self.outageToken { return Response(status: .internalServerError) }
            let delay = self.delay.withLock { $0 }
            if delay > .zero { try await Task.sleep(for: delay) }
            guard let user = Self.users[token], !self.revoked.withLock({ $0.contains(token) }) else {
                return Self.json(#"{"error":"invalid_token"}"#, status: .unauthorized)
            }
            let scopes = user.scopes.map { "\"\($0)\"" }.joined(separator: ",")
            return Self.json(#"{"uid":"\#(user.uid)","realm":"\#(user.realm)","scope":[\#(scopes)],"expires_in":3600}"#)
        }
        router.get("/api/accounts/aws") { request, _ -> Response in
            self.teamCalls.withLock { $0 += 1 }
            let member = request.uri.queryParameters["member"].map(String.init) ?? ""
            let token = request.headers[.authorization]?.split(separator: " ").last.map(String.init) ?? ""
            guard let user = Self.users[token], user.uid == member else { return Response(status: .unauthorized) }
            let removed = self.removedFromTeams.withLock { $0.contains(user.uid) }
            let teams = (removed ? [] : user.teams).map { #"{"name":"\#($0)","id":"\#($0)"}"# }.joined(separator: ",")
            return Self.json("[\(teams)]")
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            try await body("http://127.0.0.1:\(client.port ?? 0)")
        }
    }

    private static func json(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
