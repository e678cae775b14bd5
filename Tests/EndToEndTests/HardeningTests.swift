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

/// The attacks of the hardening issue, replayed with plain HTTP requests against a live registry:
/// each one got through (or stopped the process) before, and must now get a clear error while the
/// registry keeps serving.
@Suite struct HardeningTests {
    static let huge = "9223372036854775807"
    static let ociConfig = "application/vnd.oci.image.config.v1+json"

    /// `end - start + 1` overflowed for `Content-Range: 0-9223372036854775807` and trapped the
    /// process, on PATCH, on the closing PUT and on `POST ?digest=`.
    @Test func contentRangesThatOverflowAreRefused() async throws {
        try await RegistryHarness.withRegistry { registry in
            let start = try await registry.request(.post, "/v2/team/app/blobs/uploads/")
            let location = try #require(start.headers[.location])
            let digest = DigestHasher.digest(of: ByteBuffer(string: "x"))
            for (method, uri) in [
                (HTTPRequest.Method.patch, location), (.put, "\(location)?digest=\(digest)"),
                (.post, "/v2/team/app/blobs/uploads/?digest=\(digest)"),
            ] {
                for range in ["0-\(Self.huge)", "\(Self.huge)-\(Self.huge)", "0-0", "5-4", "-1-3", "0-99999999999999999999"] {
                    let response = try await registry.request(
                        method, uri, headers: [.contentRange: range, .contentLength: "1"], body: ByteBuffer(string: "x")
                    )
                    #expect([400, 416].contains(response.status.code) || (range == "0-0" && response.status.code < 300),
                            "\(method) \(range): \(response.status)")
                }
            }
            // Content-Length that is no number, or negative, next to a Content-Range.
            let bad = try await registry.request(
                .patch, location, headers: [.contentRange: "0-0", .contentLength: "-1"], body: ByteBuffer(string: "x")
            )
            #expect(bad.status.code >= 400 && bad.status.code < 500)
            #expect(try await registry.request(.get, "/v2/").status == .ok)
        }
    }

    /// A chunked body that runs past its `Content-Range` is refused (`SIZE_INVALID`) instead of
    /// being appended as if the range had said so.
    @Test func aChunkLongerThanItsRangeIsRefused() async throws {
        try await RegistryHarness.withRegistry { registry in
            let start = try await registry.request(.post, "/v2/team/app/blobs/uploads/")
            let location = try #require(start.headers[.location])
            let body = String(repeating: "x", count: 100)
            let status = try await Command.run([
                "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH", "-H", "Transfer-Encoding: chunked",
                "-H", "Content-Range: 0-9", "--data-binary", body, "http://127.0.0.1:\(registry.port)\(location)",
            ])
            #expect(status == "400")
            // The refused chunk may have left bytes (its own session's); a fresh session takes the fitting one.
            let next = try #require(try await registry.request(.post, "/v2/team/app/blobs/uploads/").headers[.location])
            let clean = try await Command.run([
                "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH", "-H", "Transfer-Encoding: chunked",
                "-H", "Content-Range: 0-99", "--data-binary", body, "http://127.0.0.1:\(registry.port)\(next)",
            ])
            #expect(clean == "202")
        }
    }

    /// A referrer's annotations are answered with every listing of its subject: they are bounded
    /// (64 KiB per manifest, 4 MiB of them per page).
    @Test func referrerAnnotationsAreBounded() async throws {
        try await RegistryHarness.withRegistry { registry in
            let (_, subject, _) = try await registry.pushImage(to: "team/app", reference: "subject", layers: ["subject layer"])
            let config = try await registry.pushBlob(ByteBuffer(string: "{}"), to: "team/app")
            let subjectDescriptor = Manifests.descriptor(MediaType.ociManifest, subject, 1)
            func referrer(_ padding: Int, _ seed: Int) -> ByteBuffer {
                Manifests.image(
                    mediaType: MediaType.ociManifest, config: Manifests.descriptor(HardeningTests.ociConfig, config, 2), layers: [],
                    extra: #","subject":\#(subjectDescriptor),"annotations":{"seed":"\#(seed)","pad":"\#(String(repeating: "p", count: padding))"}"#
                )
            }
            let large = try await registry.putManifest(referrer(70_000, 0), to: "team/app", reference: "large", mediaType: MediaType.ociManifest)
            #expect(large.status == .badRequest)
            #expect(Registry.errorCode(large) == "MANIFEST_INVALID")
            for seed in 1...80 {
                let put = try await registry.putManifest(
                    referrer(60_000, seed), to: "team/app", reference: DigestHasher.digest(of: referrer(60_000, seed)).description,
                    mediaType: MediaType.ociManifest
                )
                #expect(put.status == .created)
            }
            let listing = try await registry.request(.get, "/v2/team/app/referrers/\(subject)")
            #expect(listing.status == .ok)
            #expect(listing.body.readableBytes < 5 << 20, "\(listing.body.readableBytes) bytes")
            #expect(listing.headers[.link] != nil, "the rest is on the next page")
        }
    }

    /// Out-of-range `Range` requests on a blob and bad listing numbers answer 4xx or are clamped.
    @Test func numbersInQueriesAndRangesAreChecked() async throws {
        try await RegistryHarness.withRegistry { registry in
            let digest = try await registry.pushBlob(ByteBuffer(string: "0123456789"), to: "team/app")
            for range in ["bytes=0-\(Self.huge)", "bytes=-\(Self.huge)", "bytes=\(Self.huge)-", "bytes=5-2", "bytes=-0"] {
                let response = try await registry.request(.get, "/v2/team/app/blobs/\(digest)", headers: [.range: range])
                #expect([200, 206, 416].contains(response.status.code), "\(range): \(response.status)")
                if response.status.code == 206 {
                    #expect(response.body.readableBytes <= 10)
                }
            }
            for query in ["n=-1", "n=\(Self.huge)0", "n=abc"] {
                #expect(try await registry.request(.get, "/v2/team/app/tags/list?\(query)").status == .badRequest, "\(query)")
            }
            #expect(try await registry.request(.get, "/v2/team/app/tags/list?n=\(Self.huge)").status == .ok)
            for query in ["limit=0", "limit=-5", "limit=\(Self.huge)0"] {
                #expect(try await registry.request(.get, "/teams/team/artifacts?\(query)").status == .badRequest, "\(query)")
            }
        }
    }

    /// A layer of size Int64.min was accepted and then trapped the layer scan (`budget -= size`);
    /// sizes of -1, and sizes that differ from the stored blob's, were accepted too.
    @Test func descriptorSizesMustBeTrue() async throws {
        try await RegistryHarness.withRegistry { registry in
            let config = try await registry.pushBlob(ByteBuffer(string: "{}"), to: "team/app")
            let layer = try await registry.pushBlob(ByteBuffer(string: "layer bytes"), to: "team/app")
            let configDescriptor = Manifests.descriptor(HardeningTests.ociConfig, config, 2)
            for size in ["-9223372036854775808", "-1", "12", "0", "9223372036854775807"] {
                let manifest = Manifests.image(
                    mediaType: MediaType.ociManifest, config: configDescriptor,
                    layers: [#"{"mediaType":"\#(MediaType.ociLayerGzip)","digest":"\#(layer)","size":\#(size)}"#]
                )
                let response = try await registry.putManifest(manifest, to: "team/app", reference: "s\(size.filter(\.isNumber))", mediaType: MediaType.ociManifest)
                #expect(response.status == .badRequest, "size \(size)")
                #expect(Registry.errorCode(response) == "MANIFEST_INVALID", "size \(size)")
            }
            let wrongConfig = Manifests.image(
                mediaType: MediaType.ociManifest, config: Manifests.descriptor(HardeningTests.ociConfig, config, 3), layers: []
            )
            #expect(Registry.errorCode(try await registry.putManifest(wrongConfig, to: "team/app", reference: "c", mediaType: MediaType.ociManifest)) == "MANIFEST_INVALID")
            let good = Manifests.image(
                mediaType: MediaType.ociManifest, config: configDescriptor,
                layers: [Manifests.descriptor(MediaType.ociLayerGzip, layer, 11)]
            )
            #expect(try await registry.putManifest(good, to: "team/app", reference: "good", mediaType: MediaType.ociManifest).status == .created)
            #expect(try await registry.request(.get, "/v2/").status == .ok)
        }
    }

    /// Documents that read as an image and an index at once (CVE-2021-41190), or that parsers read
    /// two ways (a repeated key), are refused.
    @Test func ambiguousManifestsAreRefused() async throws {
        try await RegistryHarness.withRegistry { registry in
            let config = try await registry.pushBlob(ByteBuffer(string: "{}"), to: "team/app")
            let layer = try await registry.pushBlob(ByteBuffer(string: "layer bytes"), to: "team/app")
            let (_, child, _) = try await registry.pushImage(to: "team/app", reference: "child", layers: ["child layer"])
            let configDescriptor = Manifests.descriptor(HardeningTests.ociConfig, config, 2)
            let layerDescriptor = Manifests.descriptor(MediaType.ociLayerGzip, layer, 11)
            let childDescriptor = Manifests.descriptor(MediaType.ociManifest, child, 1)
            let cases: [(String, String)] = [
                // An image manifest with manifests too.
                (MediaType.ociManifest, #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","config":\#(configDescriptor),"layers":[\#(layerDescriptor)],"manifests":[\#(childDescriptor)]}"#),
                // An index with layers, or a config.
                (MediaType.ociIndex, #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociIndex)","manifests":[],"layers":[\#(layerDescriptor)]}"#),
                (MediaType.ociIndex, #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociIndex)","manifests":[],"config":\#(configDescriptor)}"#),
                // Without a mediaType, both shapes.
                ("application/json", #"{"schemaVersion":2,"config":\#(configDescriptor),"layers":[],"manifests":[]}"#),
                // A repeated key, at the top and deeper; escaped spellings of one key are one key.
                (MediaType.ociManifest, #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","config":\#(configDescriptor),"layers":[],"layers":[\#(layerDescriptor)]}"#),
                (MediaType.ociManifest, #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","config":\#(configDescriptor),"layers":[],"\u006cayers":[\#(layerDescriptor)]}"#),
                (MediaType.ociManifest, #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","config":{"mediaType":"\#(HardeningTests.ociConfig)","digest":"\#(config)","digest":"\#(layer)","size":2},"layers":[]}"#),
                // Keys that Go's encoding/json (docker, containerd, skopeo) folds onto a field the
                // registry reads under another spelling, or onto each other.
                (MediaType.ociManifest, #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","config":\#(configDescriptor),"layers":[],"Layers":[\#(layerDescriptor)]}"#),
                (MediaType.ociManifest, #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","config":\#(configDescriptor),"layers":[],"Manifests":[\#(childDescriptor)]}"#),
                (MediaType.ociManifest, #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","config":{"mediaType":"\#(Self.ociConfig)","digest":"\#(config)","size":2,"\u017Fize":-1},"layers":[]}"#),
                (MediaType.ociManifest, #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","config":\#(configDescriptor),"layers":[],"x":{"ab":1,"AB":2}}"#),
                // Nested beyond any manifest's need.
                (MediaType.ociManifest, #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","config":\#(configDescriptor),"layers":[],"annotations":{"a":"b"},"x":"# + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "}"),
            ]
            // Annotations are maps, matched exactly by every client: keys differing in case are fine.
            let annotated = #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","config":\#(configDescriptor),"layers":[],"annotations":{"a":"1","A":"2"}}"#
            #expect(try await registry.putManifest(ByteBuffer(string: annotated), to: "team/app", reference: "annotated", mediaType: MediaType.ociManifest).status == .created)
            for (index, (type, json)) in cases.enumerated() {
                let response = try await registry.putManifest(ByteBuffer(string: json), to: "team/app", reference: "amb\(index)", mediaType: type)
                #expect(response.status == .badRequest, "case \(index): \(response.status)")
                #expect(Registry.errorCode(response) == "MANIFEST_INVALID", "case \(index)")
            }
        }
    }

    /// `?mount=` without `from` linked a blob from any repository; now only from one the caller
    /// may pull, else it is a normal upload (202).
    @Test func mountsWithoutFromNeedPullOnASource() async throws {
        try await AuthenticationTests.withSecuredRegistry(tokenFlow: true) { registry, _ in
            let secret = ByteBuffer(string: "only in other/app")
            let admin: HTTPFields = [.authorization: AuthenticationTests.basic("admin-token")]
            let digest = DigestHasher.digest(of: secret)
            let put = try await registry.request(.post, "/v2/other/app/blobs/uploads/?digest=\(digest)", headers: admin, body: secret)
            #expect(put.status == .created)
            let narrow = try await TokenFlowTests.token(registry, credentials: "employee-token", scopes: ["repository:team/app:pull,push"])
            let mount = try await registry.request(
                .post, "/v2/team/app/blobs/uploads/?mount=\(digest)", headers: [.authorization: "Bearer \(narrow.token)"]
            )
            #expect(mount.status == .accepted)
            #expect(try await registry.request(.get, "/v2/team/app/blobs/\(digest)", headers: admin).status == .notFound)
            let wide = try await TokenFlowTests.token(
                registry, credentials: "employee-token", scopes: ["repository:team/app:pull,push", "repository:other/app:pull"]
            )
            let granted = try await registry.request(
                .post, "/v2/team/app/blobs/uploads/?mount=\(digest)", headers: [.authorization: "Bearer \(wide.token)"]
            )
            #expect(granted.status == .created)
        }
    }

    /// A registry token was accepted as the login of `/v2/token` and renewed forever, after its
    /// OAuth2 token was revoked or its user left the team.
    @Test func registryTokensAreNotRenewed() async throws {
        try await AuthenticationTests.withSecuredRegistry(tokenFlow: true, cacheSeconds: 0) { registry, standIn in
            let first = try await TokenFlowTests.token(registry, credentials: "bob-token", scopes: ["repository:team/app:pull,push"])
            standIn.revoked.withLock { _ = $0.insert("bob-token") }
            let renewal = try await registry.request(
                .get, "/v2/token?service=pierone&scope=repository:team/app:pull,push",
                headers: [.authorization: "Bearer \(first.token)"]
            )
            #expect(renewal.status == .unauthorized)
            let relogin = try await registry.request(
                .get, "/v2/token?service=pierone&scope=repository:team/app:pull,push",
                headers: [.authorization: AuthenticationTests.basic("bob-token")]
            )
            #expect(relogin.status == .unauthorized)

            // Removed from the team: a new login grants no push, and the old token cannot be renewed.
            let before = try await TokenFlowTests.token(registry, credentials: "employee-token", scopes: ["repository:team/app:push"])
            standIn.removedFromTeams.withLock { _ = $0.insert("alice") }
            let after = try await TokenFlowTests.token(registry, credentials: "employee-token", scopes: ["repository:team/app:push"])
            #expect(try await registry.request(
                .post, "/v2/team/app/blobs/uploads/", headers: [.authorization: "Bearer \(after.token)"]
            ).status == .unauthorized)
            #expect(try await registry.request(
                .get, "/v2/token?service=pierone&scope=repository:team/app:push", headers: [.authorization: "Bearer \(before.token)"]
            ).status == .unauthorized)
        }
    }

    /// A `/customers` token counted as an employee; realms are allow-listed now.
    @Test func onlyAllowedRealmsGetIn() async throws {
        try await AuthenticationTests.withSecuredRegistry { registry, _ in
            let customer: HTTPFields = [.authorization: AuthenticationTests.basic("customer-token")]
            for path in ["/v2/_catalog", "/stats", "/v2/", "/teams"] {
                let response = try await registry.request(.get, path, headers: customer)
                #expect(response.status == .forbidden, "\(path): \(response.status)")
            }
            #expect(try await registry.request(.get, "/v2/_catalog", headers: [.authorization: AuthenticationTests.basic("employee-token")]).status == .ok)
        }
        try await AuthenticationTests.withSecuredRegistry(configure: { $0.auth.realms = ["/employees", "/services", "/customers"] }) { registry, _ in
            let customer: HTTPFields = [.authorization: AuthenticationTests.basic("customer-token")]
            let status = try await registry.request(.get, "/v2/_catalog", headers: customer).status
            #expect(status == .ok)
        }
    }

    /// `docker login -u someone` passed as anonymous; unknown user names are refused like a wrong token.
    @Test func basicWithAnUnknownUserIsRefused() async throws {
        try await AuthenticationTests.withSecuredRegistry(publicRead: true) { registry, _ in
            let wrong: HTTPFields = [.authorization: "Basic " + Data("someone:employee-token".utf8).base64EncodedString()]
            let response = try await registry.request(.get, "/v2/", headers: wrong)
            #expect(response.status == .unauthorized)
            #expect(response.headers[.wwwAuthenticate] != nil)
            // With public read an anonymous pull works, but a wrong login is still wrong.
            #expect(try await registry.request(.get, "/v2/team/app/tags/list", headers: wrong).status == .unauthorized)
            #expect(try await registry.request(.get, "/v2/team/app/tags/list").status != .unauthorized)
        }
    }

    /// Concurrent requests (each on its own connection) with one unknown token cost one tokeninfo
    /// call; a token that cannot be one costs none.
    @Test func tokeninfoLookupsAreMerged() async throws {
        try await AuthenticationTests.withSecuredRegistry(client: .ahc()) { registry, standIn in
            standIn.delay.withLock { $0 = .milliseconds(300) }
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await registry.request(.get, "/v2/", headers: [.authorization: "Bearer employee-token"]).status
                    }
                }
                for try await status in group { #expect(status == .ok) }
            }
            #expect(standIn.tokenInfoCalls.withLock { $0 } == 1)
            for token in ["not a token", String(repeating: "a", count: 9000), "abc=def", "<script>"] {
                let response = try await registry.request(.get, "/v2/", headers: [.authorization: "Bearer \(token)"])
                #expect(response.status == .unauthorized)
            }
            #expect(standIn.tokenInfoCalls.withLock { $0 } == 1)
        }
    }

    /// Unlimited sessions per caller made readiness list 24,000 sessions; now a client's sessions
    /// are bounded (429 with Retry-After) and readiness never lists them.
    @Test func uploadSessionsAreBoundedPerClientAndReadinessDoesNotListThem() async throws {
        try await RegistryHarness.withRegistry(configure: { $0.uploadSessionsPerClient = 20 }) { registry in
            for _ in 0..<20 {
                #expect(try await registry.request(.post, "/v2/team/app/blobs/uploads/").status == .accepted)
            }
            let refused = try await registry.request(.post, "/v2/team/app/blobs/uploads/")
            #expect(refused.status == .tooManyRequests)
            #expect(Registry.errorCode(refused) == "TOOMANYREQUESTS")
            #expect(refused.headers[.retryAfter] != nil)
            func listings() async throws -> Double {
                let text = String(buffer: try await registry.request(.get, "/metrics").body)
                return try Exposition(text).sum("pierone_storage_operation_duration_seconds_count", ["operation": "list_uploads"])
            }
            // The metrics are the test process's, shared with the registries and stores of other
            // tests that list uploads now and then: 50 readiness checks that each listed would add
            // at least 50; what other tests add meanwhile stays well below.
            let before = try await listings()
            for _ in 0..<50 { #expect(try await registry.request(.get, "/health/ready").status == .ok) }
            let added = try await listings() - before
            #expect(added < 50, "\(added) listings during 50 readiness checks")
        }
    }

    /// No secret reaches a log line: webhook URLs keep scheme, host and port only; tokens, the
    /// webhook signing secret, the database password and the S3 secret key never appear — read
    /// from the logs of a `pierone serve` process at debug level, on PostgreSQL and S3 (moto).
    @Test func logsCarryNoSecrets() async throws {
        let standIn = OAuthStandIn()
        try await standIn.run { base in
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-logs-\(UUID())")
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: scratch) }
            let database = try await PostgresCluster.shared().makeDatabase()
            let moto = try await MotoServer.shared()
            let port = try PostgresCluster.freePort()
            let closed = try PostgresCluster.freePort()
            let serve = try ServiceProcess(
                "serve-logs", arguments: ["serve"],
                environment: [
                    "HTTP_PORT": String(port), "HTTP_BIND_ADDRESS": "127.0.0.1", "STORAGE_DIRECTORY": scratch.appendingPathComponent("data").path,
                    "HTTP_TOKENINFO_URL": base + "/oauth2/tokeninfo", "HTTP_TEAM_SERVICE_URL": base, "LOG_LEVEL": "debug",
                    "NOTIFICATION_WEBHOOK_URLS": "http://hookuser:HOOKPASSWORD@127.0.0.1:\(closed)/hooks/HOOKPATHSECRET?token=HOOKQUERYSECRET",
                    "NOTIFICATION_WEBHOOK_SECRET": "a-webhook-signing-secret", "NOTIFICATION_RETRY_MAX_SECONDS": "1",
                    "DATABASE_URL": database, "STORAGE_S3_BUCKET": moto.bucket, "STORAGE_S3_ENDPOINT": moto.endpoint,
                    "STORAGE_S3_PREFIX": "logs-\(UUID())", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": moto.accessKeyID,
                    "AWS_SECRET_ACCESS_KEY": moto.secretAccessKey,
                ],
                logDirectory: scratch
            )
            defer { serve.stop() }
            let registry = "http://127.0.0.1:\(port)"
            for _ in 0..<200 {
                if (try? await Command.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", registry + "/health/ready"])) == "200" { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let auth = "Authorization: Basic " + Data("oauth2:admin-token".utf8).base64EncodedString()
            let config = "{}"
            let digest = DigestHasher.digest(of: ByteBuffer(string: config))
            // A loaded machine may answer 503 (a slow tokeninfo or S3 stand-in): the client retries.
            for _ in 0..<5 {
                let status = try await Command.run([
                    "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", auth, "-X", "POST", "--data-binary", config,
                    registry + "/v2/team/app/blobs/uploads/?digest=\(digest)",
                ])
                if status == "201" { break }
            }
            let manifest = #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","config":\#(Manifests.descriptor(Self.ociConfig, digest, 2)),"layers":[]}"#
            let pushed = try await Command.run([
                "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", auth, "-H", "Content-Type: \(MediaType.ociManifest)",
                "-X", "PUT", "--data-binary", manifest, registry + "/v2/team/app/manifests/1.0",
            ])
            #expect(pushed == "201")
            _ = try await Command.run(["curl", "-s", "-H", "Authorization: Bearer employee-token", registry + "/v2/"])
            var log = ""
            for _ in 0..<100 where !log.contains("notification not delivered") {
                try await Task.sleep(for: .milliseconds(100))
                log = serve.output
            }
            #expect(log.contains("notification not delivered"), "the dispatcher tried and logged: \(log.suffix(2000))")
            for secret in ["HOOKPASSWORD", "HOOKPATHSECRET", "HOOKQUERYSECRET", "hookuser", "admin-token", "employee-token",
                           "a-webhook-signing-secret", Data("oauth2:admin-token".utf8).base64EncodedString(),
                           PostgresCluster.password, moto.secretAccessKey] {
                #expect(!log.contains(secret), "\(secret) is in the log")
            }
            #expect(log.contains("127.0.0.1:\(closed)/…"))
        }
    }
}
