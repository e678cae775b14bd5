import Contracts
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import NIOFoundationCompat
import Runtime
import Testing
import TestSupport

/// The Docker registry token flow (`/v2/token`, Bearer challenges), with skopeo and by hand.
@Suite struct TokenFlowTests {
    struct TokenAnswer: Decodable {
        var token: String
        var access_token: String
        var expires_in: Int
        var issued_at: String
    }

    static func token(_ registry: Registry, credentials: String?, scopes: [String]) async throws -> TokenAnswer {
        let query = scopes.map { "scope=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" }.joined(separator: "&")
        var headers: HTTPFields = [:]
        if let credentials { headers[.authorization] = AuthenticationTests.basic(credentials) }
        let response = try await registry.request(.get, "/v2/token?service=pierone&\(query)", headers: headers)
        #expect(response.status == .ok, "\(String(buffer: response.body))")
        return try JSONDecoder().decode(TokenAnswer.self, from: Data(buffer: response.body))
    }

    @Test func challengesAreBearerWithRealmServiceAndScope() async throws {
        try await AuthenticationTests.withSecuredRegistry(tokenFlow: true, publicURL: "https://registry.example.com") { registry, _ in
            let ping = try await registry.request(.get, "/v2/")
            #expect(ping.headers[.wwwAuthenticate] == #"Bearer realm="https://registry.example.com/v2/token",service="pierone""#)
            let push = try await registry.request(.post, "/v2/team/app/blobs/uploads/")
            #expect(push.headers[.wwwAuthenticate]?.hasSuffix(#",scope="repository:team/app:pull,push""#) == true)
        }
    }

    @Test func tokensGrantTheIntersectionOfAskedAndAllowed() async throws {
        try await AuthenticationTests.withSecuredRegistry(tokenFlow: true) { registry, _ in
            let answer = try await Self.token(
                registry, credentials: "employee-token",
                scopes: ["repository:team/app:pull,push", "repository:other/app:pull,push"]
            )
            #expect(answer.token == answer.access_token)
            #expect(answer.expires_in >= 60)
            let bearer: HTTPFields = [.authorization: "Bearer \(answer.token)"]
            #expect(try await registry.request(.post, "/v2/team/app/blobs/uploads/", headers: bearer).status == .accepted)
            #expect(try await registry.request(.get, "/v2/other/app/tags/list", headers: bearer).status == .notFound)
            let outside = try await registry.request(.post, "/v2/other/app/blobs/uploads/", headers: bearer)
            #expect(outside.status == .unauthorized)
            #expect(outside.headers[.wwwAuthenticate]?.contains(#"error="insufficient_scope""#) == true)
            // A token is no key to repositories it does not name.
            #expect(try await registry.request(.get, "/v2/third/app/tags/list", headers: bearer).status == .unauthorized)
            // Invalid credentials get no token.
            let invalid = try await registry.request(
                .get, "/v2/token?service=pierone&scope=repository:team/app:pull",
                headers: [.authorization: AuthenticationTests.basic("forged-token")]
            )
            #expect(invalid.status == .unauthorized)
        }
    }

    /// A mount links a blob only when the same token may pull the source; otherwise it is an upload.
    @Test func mountNeedsPullOnTheSourceInTheToken() async throws {
        try await AuthenticationTests.withSecuredRegistry(tokenFlow: true) { registry, _ in
            let admin = try await Self.token(registry, credentials: "admin-token", scopes: ["repository:other/app:pull,push"])
            let bytes = ByteBuffer(string: "source blob")
            let digest = DigestHasher.digest(of: bytes)
            let pushed = try await registry.request(
                .post, "/v2/other/app/blobs/uploads/?digest=\(digest)", headers: [.authorization: "Bearer \(admin.token)"], body: bytes
            )
            #expect(pushed.status == .created)
            let narrow = try await Self.token(registry, credentials: "employee-token", scopes: ["repository:team/app:pull,push"])
            let refused = try await registry.request(
                .post, "/v2/team/app/blobs/uploads/?mount=\(digest)&from=other/app", headers: [.authorization: "Bearer \(narrow.token)"]
            )
            #expect(refused.status == .accepted)
            let wide = try await Self.token(
                registry, credentials: "employee-token", scopes: ["repository:team/app:pull,push", "repository:other/app:pull"]
            )
            let mounted = try await registry.request(
                .post, "/v2/team/app/blobs/uploads/?mount=\(digest)&from=other/app", headers: [.authorization: "Bearer \(wide.token)"]
            )
            #expect(mounted.status == .created)
        }
    }

    @Test func oauth2PostForm() async throws {
        try await AuthenticationTests.withSecuredRegistry(tokenFlow: true) { registry, _ in
            let form = "grant_type=password&username=oauth2&password=service-token&service=pierone&scope=repository%3Ateam%2Fapp%3Apull%2Cpush&client_id=containerd"
            let response = try await registry.request(
                .post, "/v2/token", headers: [.contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: form)
            )
            #expect(response.status == .ok)
            let answer = try JSONDecoder().decode(TokenAnswer.self, from: Data(buffer: response.body))
            let push = try await registry.request(.post, "/v2/team/app/blobs/uploads/", headers: [.authorization: "Bearer \(answer.access_token)"])
            #expect(push.status == .accepted)
        }
    }

    @Test func skopeoUsesTheTokenFlow() async throws {
        try await ClientTests.withScratch { scratch in
            try await ClientTests.makeOCILayout(at: scratch, content: "token flow image")
            try await AuthenticationTests.withSecuredRegistry(publicRead: true, tokenFlow: true) { registry, _ in
                let layout = "oci:\(scratch.appendingPathComponent("layout").path):1.0"
                try await ClientTests.skopeo([
                    "copy", "--dest-tls-verify=false", "--dest-creds", "oauth2:employee-token", layout,
                    "docker://\(registry.host)/team/app:1.0",
                ])
                await #expect(throws: Command.Failure.self) {
                    try await ClientTests.skopeo([
                        "copy", "--dest-tls-verify=false", "--dest-creds", "oauth2:employee-token", layout,
                        "docker://\(registry.host)/other/app:1.0",
                    ])
                }
                // Anonymous pull with public read: an anonymous token with pull only.
                let out = scratch.appendingPathComponent("anonymous")
                try await ClientTests.skopeo(["copy", "--src-tls-verify=false", "docker://\(registry.host)/team/app:1.0", "oci:\(out.path):x"])
                let anonymous = try await Self.token(registry, credentials: nil, scopes: ["repository:team/app:pull,push"])
                let claims = String(decoding: Data(base64Encoded: TokenFlowTests.padded(String(anonymous.token.split(separator: ".")[1]))) ?? Data(), as: UTF8.self)
                #expect(claims.contains(#""actions":["pull"]"#))
            }
        }
    }

    static func padded(_ base64url: String) -> String {
        var value = base64url.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while value.count % 4 != 0 { value += "=" }
        return value
    }
}
