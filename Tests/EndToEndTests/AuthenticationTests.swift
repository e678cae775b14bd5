import Contracts
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import PierOneApp
import Runtime
import Synchronization
import Testing
import TestSupport

/// Pier One's security with real clients, against the tokeninfo/team stand-in.
@Suite struct AuthenticationTests {
    static func basic(_ token: String) -> String { "Basic " + Data("oauth2:\(token)".utf8).base64EncodedString() }

    /// A registry with authentication against a fresh stand-in.
    static func withSecuredRegistry(
        publicRead: Bool = false, tokenFlow: Bool = false, publicURL: String? = nil,
        instances: InstanceIdentityFixture? = nil, cacheSeconds: Int = 120,
        configure: @escaping @Sendable (inout ServeConfiguration) -> Void = { _ in },
        client setup: TestingSetup = .live,
        _ test: @Sendable (Registry, OAuthStandIn) async throws -> Void
    ) async throws {
        let standIn = OAuthStandIn()
        try await standIn.run { base in
            try await RegistryHarness.withRegistry(configure: { configuration in
                configuration.auth = AuthSettings(
                    tokenInfoURL: base + "/oauth2/tokeninfo", teamServiceURL: base, publicRead: publicRead,
                    tokenKeys: tokenFlow ? [("k1", String(repeating: "s", count: 40))] : [], publicURL: publicURL,
                    instanceCertificates: instances.flatMap { FileManager.default.contents(atPath: $0.awsCertificatePath) },
                    instanceMaximumAge: 3600, instanceAccess: ["123456789012": [Glob("team/**")]]
                )
                configuration.auth.cacheSeconds = cacheSeconds
                configure(&configuration)
            }, client: setup) { registry in
                try await test(registry, standIn)
            }
        }
    }

    @Test func skopeoPushesToItsTeamAndIsDeniedElsewhere() async throws {
        try await ClientTests.withScratch { scratch in
            try await ClientTests.makeOCILayout(at: scratch, content: "authenticated image")
            try await Self.withSecuredRegistry { registry, _ in
                let layout = "oci:\(scratch.appendingPathComponent("layout").path):1.0"
                try await ClientTests.skopeo([
                    "copy", "--dest-tls-verify=false", "--dest-creds", "oauth2:employee-token", layout,
                    "docker://\(registry.host)/team/app:1.0",
                ])
                // Another team's repository: skopeo fails, and the registry says why.
                await #expect(throws: Command.Failure.self) {
                    try await ClientTests.skopeo([
                        "copy", "--dest-tls-verify=false", "--dest-creds", "oauth2:employee-token", layout,
                        "docker://\(registry.host)/other/app:1.0",
                    ])
                }
                let denied = try await registry.request(
                    .post, "/v2/other/app/blobs/uploads/", headers: [.authorization: Self.basic("employee-token")]
                )
                #expect(denied.status == .forbidden)
                #expect(Registry.errorCode(denied) == "DENIED")
                #expect(String(buffer: denied.body).contains("not a member of team other"))
                // Everyone with a valid token may pull, a Bearer OAuth token too.
                let out = scratch.appendingPathComponent("pulled")
                try await ClientTests.skopeo([
                    "copy", "--src-tls-verify=false", "--src-creds", "oauth2:service-token",
                    "docker://\(registry.host)/team/app:1.0", "oci:\(out.path):pulled",
                ])
                let bearer = try await registry.request(.head, "/v2/team/app/manifests/1.0", headers: [.authorization: "Bearer admin-token"])
                #expect(bearer.status == .ok)
            }
        }
    }

    @Test func missingOrInvalidCredentialsAreChallenged() async throws {
        try await Self.withSecuredRegistry { registry, _ in
            for headers: HTTPFields in [[:], [.authorization: Self.basic("forged-token")], [.authorization: "Basic garbage"]] {
                for path in ["/v2/", "/v2/team/app/tags/list"] {
                    let response = try await registry.request(.get, path, headers: headers)
                    #expect(response.status == .unauthorized, "\(path) \(headers)")
                    #expect(Registry.errorCode(response) == "UNAUTHORIZED")
                    #expect(response.headers[.wwwAuthenticate] == #"Basic realm="Pier One""#)
                    #expect(response.headers[.dockerDistributionAPIVersion] == "registry/2.0")
                }
            }
            await #expect(throws: Command.Failure.self) {
                try await ClientTests.skopeo(["inspect", "--tls-verify=false", "--creds", "oauth2:forged-token", "docker://\(registry.host)/team/app:1.0"])
            }
        }
    }

    @Test func tokeninfoOutageIs503NotUnauthorized() async throws {
        try await Self.withSecuredRegistry { registry, _ in
            let response = try await registry.request(.get, "/v2/", headers: [.authorization: Self.basic(OAuthStandIn.outageToken)])
            #expect(response.status == .serviceUnavailable)
            #expect(Registry.errorCode(response) == "UNAVAILABLE")
        }
    }

    @Test func serviceUsersNeedApplicationWrite() async throws {
        try await Self.withSecuredRegistry { registry, _ in
            let without = try await registry.request(
                .post, "/v2/team/app/blobs/uploads/", headers: [.authorization: Self.basic("service-without-write")]
            )
            #expect(without.status == .forbidden)
            #expect(String(buffer: without.body).contains("application.write"))
            let with = try await registry.request(
                .post, "/v2/team/app/blobs/uploads/", headers: [.authorization: Self.basic("service-token")]
            )
            #expect(with.status == .accepted)
            let anywhere = try await registry.request(
                .post, "/v2/elsewhere/app/blobs/uploads/", headers: [.authorization: Self.basic("admin-token")]
            )
            #expect(anywhere.status == .accepted)
        }
    }

    @Test func answersAreCached() async throws {
        try await Self.withSecuredRegistry { registry, standIn in
            for _ in 0..<5 {
                let response = try await registry.request(
                    .post, "/v2/team/app/blobs/uploads/", headers: [.authorization: Self.basic("employee-token")]
                )
                #expect(response.status == .accepted)
                _ = try await registry.request(.get, "/v2/", headers: [.authorization: Self.basic("forged-token")])
            }
            #expect(standIn.tokenInfoCalls.withLock { $0 } == 2)
            #expect(standIn.teamCalls.withLock { $0 } == 1)
        }
    }

    @Test func deletesNeedPushRightsAndRespectImmutability() async throws {
        try await Self.withSecuredRegistry { registry, _ in
            let image = try await registry.request(
                .post, "/v2/team/app/blobs/uploads/?digest=\(DigestHasher.digest(of: ByteBuffer(string: "x")))",
                headers: [.authorization: Self.basic("employee-token")], body: ByteBuffer(string: "x")
            )
            #expect(image.status == .created)
            let digest = DigestHasher.digest(of: ByteBuffer(string: "x"))
            let foreign = try await registry.request(
                .delete, "/v2/team/app/blobs/\(digest)", headers: [.authorization: Self.basic("service-without-write")]
            )
            #expect(foreign.status == .forbidden)
            let own = try await registry.request(
                .delete, "/v2/team/app/blobs/\(digest)", headers: [.authorization: Self.basic("employee-token")]
            )
            #expect(own.status == .accepted)
        }
    }

    @Test func publicReadLetsAnonymousPullButNotPush() async throws {
        try await ClientTests.withScratch { scratch in
            try await ClientTests.makeOCILayout(at: scratch, content: "public image")
            try await Self.withSecuredRegistry(publicRead: true) { registry, _ in
                let layout = "oci:\(scratch.appendingPathComponent("layout").path):1.0"
                try await ClientTests.skopeo([
                    "copy", "--dest-tls-verify=false", "--dest-creds", "oauth2:employee-token", layout,
                    "docker://\(registry.host)/team/app:1.0",
                ])
                let out = scratch.appendingPathComponent("anonymous")
                try await ClientTests.skopeo([
                    "copy", "--src-tls-verify=false", "docker://\(registry.host)/team/app:1.0", "oci:\(out.path):pulled",
                ])
                await #expect(throws: Command.Failure.self) {
                    try await ClientTests.skopeo(["copy", "--dest-tls-verify=false", layout, "docker://\(registry.host)/team/anon:1.0"])
                }
                // The ping and a push are challenged (401), so Docker sends its credentials for a push.
                #expect(try await registry.request(.get, "/v2/").status == .unauthorized)
                #expect(try await registry.request(.get, "/v2/team/app/tags/list").status == .ok)
                let push = try await registry.request(.post, "/v2/team/app/blobs/uploads/")
                #expect(push.status == .unauthorized)
                #expect(push.headers[.wwwAuthenticate] != nil)
            }
        }
    }

    /// An EC2 instance pulls what its account is mapped to, with `instance-identity-document:<pkcs7>`.
    @Test func instancesPullTheirRepositoriesOnly() async throws {
        let fixture = try await InstanceIdentityFixture.make()
        let document = try await fixture.sign(InstanceIdentityFixture.document(accountID: "123456789012"))
        let forged = try await fixture.sign(InstanceIdentityFixture.document(accountID: "123456789012"), by: "attacker", embedCertificate: true)
        try await ClientTests.withScratch { scratch in
            try await ClientTests.makeOCILayout(at: scratch, content: "image for instances")
            try await Self.withSecuredRegistry(instances: fixture) { registry, _ in
                let layout = "oci:\(scratch.appendingPathComponent("layout").path):1.0"
                for repository in ["team/app", "other/app"] {
                    try await ClientTests.skopeo([
                        "copy", "--dest-tls-verify=false", "--dest-creds", "oauth2:admin-token", layout,
                        "docker://\(registry.host)/\(repository):1.0",
                    ])
                }
                let out = scratch.appendingPathComponent("pulled")
                try await ClientTests.skopeo([
                    "copy", "--src-tls-verify=false", "--src-creds", "instance-identity-document:\(document)",
                    "docker://\(registry.host)/team/app:1.0", "oci:\(out.path):pulled",
                ])
                let iid: HTTPFields = [.authorization: "Basic " + Data("instance-identity-document:\(document)".utf8).base64EncodedString()]
                let elsewhere = try await registry.request(.get, "/v2/other/app/manifests/1.0", headers: iid)
                #expect(elsewhere.status == .forbidden)
                let push = try await registry.request(.post, "/v2/team/app/blobs/uploads/", headers: iid)
                #expect(push.status == .forbidden)
                let attacker: HTTPFields = [.authorization: "Basic " + Data("instance-identity-document:\(forged)".utf8).base64EncodedString()]
                #expect(try await registry.request(.get, "/v2/team/app/manifests/1.0", headers: attacker).status == .unauthorized)
            }
        }
    }
}
