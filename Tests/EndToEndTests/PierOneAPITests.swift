import Contracts
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
import Runtime
import Testing
import TestSupport

/// The Pier One REST API with real pushes behind it: skopeo for an image with a `scm-source.json`,
/// the protocol helpers for the rest.
@Suite struct PierOneAPITests {
    static let scm = #"{"url":"git:git@github.com:zalando-stups/pierone.git","revision":"cd768599e1bb","author":"hjacobs","status":""}"#

    /// GET `path`, answering the status, the decoded JSON (nil when not JSON) and the response.
    static func get(_ registry: Registry, _ path: String, headers: HTTPFields = [:]) async throws
        -> (status: HTTPResponse.Status, json: Any?, response: TestResponse)
    {
        let response = try await registry.request(.get, path, headers: headers)
        let json = try? JSONSerialization.jsonObject(with: Data(buffer: response.body), options: [.fragmentsAllowed])
        return (response.status, json, response)
    }

    /// Waits until `path` answers 200 (the layer scan runs after the push).
    static func eventually(_ registry: Registry, _ path: String, headers: HTTPFields = [:]) async throws -> Any? {
        for _ in 0..<100 {
            let answer = try await self.get(registry, path, headers: headers)
            if answer.status == .ok { return answer.json }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("\(path) never answered 200")
        return nil
    }

    /// The config digest of a pushed manifest: the image id.
    static func imageID(_ registry: Registry, _ repository: String, _ tag: String, headers: HTTPFields = [:]) async throws
        -> String
    {
        var headers = headers
        headers[.accept] = MediaType.ociManifest
        let manifest = try await registry.request(.get, "/v2/\(repository)/manifests/\(tag)", headers: headers)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer: manifest.body)) as? [String: Any])
        return try #require((object["config"] as? [String: Any])?["digest"] as? String)
    }

    @Test(arguments: Backend.allCases)
    func everyEndpointWithRealPushes(_ backend: Backend) async throws {
        try await ClientTests.withScratch { scratch in
            try await ClientTests.makeOCILayout(at: scratch, content: "api image", files: ["scm-source.json": Self.scm])
            try await RegistryHarness.withRegistry(backend) { registry in
                try await ClientTests.skopeo([
                    "copy", "--dest-tls-verify=false", "oci:\(scratch.appendingPathComponent("layout").path):1.0",
                    "docker://\(registry.host)/alpha/app:1.0",
                ])
                try await Task.sleep(for: .milliseconds(20))
                try await registry.pushImage(to: "alpha/app", reference: "2.0-SNAPSHOT", config: #"{"n":1}"#, layers: ["l1"])
                try await registry.pushImage(to: "alpha/group/tool", reference: "1", config: #"{"n":2}"#, layers: ["l2"])
                try await registry.pushImage(to: "beta/svc", reference: "1", config: #"{"n":3}"#, layers: ["l3"])
                // A repository with a blob but no tag is no artifact.
                try await registry.pushBlob(ByteBuffer(string: "orphan"), to: "gamma/app")

                #expect(try await Self.get(registry, "/teams").json as? [String] == ["alpha", "beta"])
                #expect(try await Self.get(registry, "/teams/alpha/artifacts").json as? [String] == ["app", "group/tool"])

                // Tags, oldest first, with the original's fields and this registry's additions.
                let tags = try #require(try await Self.get(registry, "/teams/alpha/artifacts/app/tags").json as? [[String: Any]])
                #expect(tags.map { $0["name"] as? String } == ["1.0", "2.0-SNAPSHOT"])
                let first = tags[0]
                let created = try #require(first["created"] as? String)
                #expect(created.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(created)")
                #expect(first["created_by"] as? String == "anonymous")
                #expect(first["image"] as? String == (try await Self.imageID(registry, "alpha/app", "1.0")))
                #expect(first["media_type"] as? String == MediaType.ociManifest)
                #expect(first["immutable"] as? Bool == true)
                #expect(tags[1]["immutable"] as? Bool == false)
                let manifest = try await registry.request(.get, "/v2/alpha/app/manifests/1.0", headers: [.accept: MediaType.ociManifest])
                #expect(first["manifest_digest"] as? String == manifest.headers[.dockerContentDigest])
                let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer: manifest.body)) as? [String: Any])
                let config = try #require(object["config"] as? [String: Any])
                let layers = try #require(object["layers"] as? [[String: Any]])
                let expectedSize = manifest.body.readableBytes + (config["size"] as! Int) + layers.map { $0["size"] as! Int }.reduce(0, +)
                #expect(first["total_size"] as? Int == expectedSize)
                let deep = try await Self.get(registry, "/teams/alpha/artifacts/group/tool/tags")
                #expect((deep.json as? [[String: Any]])?.map { $0["name"] as? String } == ["1"])

                // scm-source from the layer pushed by skopeo, read after the push.
                let source = try #require(try await Self.eventually(registry, "/teams/alpha/artifacts/app/tags/1.0/scm-source") as? [String: Any])
                #expect(source["url"] as? String == "git:git@github.com:zalando-stups/pierone.git")
                #expect(source["revision"] as? String == "cd768599e1bb")
                #expect(source["author"] as? String == "hjacobs")
                #expect(source["origin"] as? String == "layer")
                let none = try await Self.get(registry, "/teams/alpha/artifacts/app/tags/2.0-SNAPSHOT/scm-source")
                #expect(none.status == .notFound)

                // Reverse lookup by image id prefix: found, unknown, invalid, ambiguous.
                let image = try await Self.imageID(registry, "alpha/app", "1.0")
                let hex = String(image.dropFirst("sha256:".count))
                let found = try await Self.get(registry, "/tags/\(hex.prefix(12))")
                #expect(found.json as? [[String: String]] == [["name": "1.0", "team": "alpha", "artifact": "app"]])
                #expect(try await Self.get(registry, "/tags/\(image)").status == .ok)
                let ids = [image] + (try await [("alpha/app", "2.0-SNAPSHOT"), ("alpha/group/tool", "1"), ("beta/svc", "1")]
                    .asyncMap { try await Self.imageID(registry, $0.0, $0.1) })
                let unused = try #require("0123456789abcdef".first { digit in !ids.contains { $0.hasPrefix("sha256:\(digit)") } })
                let unknown = try await Self.get(registry, "/tags/\(unused)")
                #expect(unknown.status == .notFound)
                #expect(Registry.errorCode(unknown.response) == "MANIFEST_UNKNOWN")
                #expect(try await Self.get(registry, "/tags/not-hex").status == .badRequest)
                // Two images whose ids share a first digit (at most 17 images make one pair).
                var seen: [Character: String] = [:]
                var shared: Character?
                for id in ids {
                    if seen[Array(id)[7]] != nil { shared = Array(id)[7] } else { seen[Array(id)[7]] = id }
                }
                var n = 10
                while shared == nil {
                    try await registry.pushImage(to: "beta/svc", reference: "v\(n)", config: #"{"n":\#(n)}"#, layers: ["l3"])
                    let id = try await Self.imageID(registry, "beta/svc", "v\(n)")
                    let digit = Array(id)[7]
                    if seen[digit] != nil { shared = digit } else { seen[digit] = id }
                    n += 1
                }
                let ambiguous = try await Self.get(registry, "/tags/\(shared!)")
                #expect(ambiguous.status == .preconditionFailed)

                // Statistics.
                let stats = try #require(try await Self.get(registry, "/stats").json as? [String: Int])
                #expect(stats["teams"] == 2)
                #expect(stats["artifacts"] == 3)
                #expect(stats["tags"] == 4 + (n - 10))
                // Blob bytes only (manifests are metadata), each blob once: more than the first image's blobs.
                #expect((stats["storage"] ?? 0) > expectedSize - manifest.body.readableBytes)
                let teams = try #require(try await Self.get(registry, "/stats/teams").json as? [[String: Any]])
                #expect(teams.map { $0["team"] as? String } == ["alpha", "beta"])
                #expect((teams[0]["stats"] as? [String: Int])?["artifacts"] == 2)
                #expect((teams[0]["stats"] as? [String: Int])?["tags"] == 3)
                let beta = try #require(try await Self.get(registry, "/stats/teams/beta").json as? [String: Int])
                #expect(beta["artifacts"] == 1)
                #expect(beta["tags"] == 1 + (n - 10))

                // Unknown teams and artifacts.
                for path in ["/teams/nobody/artifacts", "/teams/gamma/artifacts", "/stats/teams/nobody",
                             "/teams/alpha/artifacts/nothing/tags", "/teams/alpha/artifacts/nothing/tags/1/scm-source"] {
                    let answer = try await Self.get(registry, path)
                    #expect(answer.status == .notFound, "\(path)")
                    #expect(Registry.errorCode(answer.response) != nil, "\(path)")
                }
                #expect(try await Self.get(registry, "/teams/Alpha/artifacts/x/tags").status == .badRequest)

                // Pages: the body stays an array, Link leads on.
                let page = try await Self.get(registry, "/teams?limit=1")
                #expect(page.json as? [String] == ["alpha"])
                #expect(page.response.headers[.link] == #"</teams?limit=1&after=alpha>; rel="next""#)
                let next = try await Self.get(registry, "/teams?limit=1&after=alpha")
                #expect(next.json as? [String] == ["beta"])
                #expect(next.response.headers[.link] == nil)
                let tagPage = try await Self.get(registry, "/teams/alpha/artifacts/app/tags?limit=1")
                #expect((tagPage.json as? [[String: Any]])?.map { $0["name"] as? String } == ["1.0"])
                let rest = try await Self.get(registry, "/teams/alpha/artifacts/app/tags?limit=1&after=1.0")
                #expect((rest.json as? [[String: Any]])?.map { $0["name"] as? String } == ["2.0-SNAPSHOT"])
                for bad in ["0", "1001", "x"] {
                    #expect(try await Self.get(registry, "/teams?limit=\(bad)").status == .badRequest)
                }

                #expect(try await Self.get(registry, "/.well-known/health").json as? [String: String] == ["health": "OK"])
            }
        }
    }

    /// `?order=newest` pages the tags latest first: following `Link` from the first page visits
    /// every tag once, in exactly the reverse of the oldest-first listing; a bad order is a 400.
    /// `?prefix=` finds tags (in name order), teams and artifacts by prefix, `?digest=` the tags of
    /// one manifest.
    @Test(arguments: Backend.allCases)
    func listingsPageNewestFirstAndFilter(_ backend: Backend) async throws {
        try await RegistryHarness.withRegistry(backend) { registry in
            let image = try await registry.pushImage(to: "team/many", reference: "t0", layers: ["many"])
            for n in 1..<45 {
                #expect(try await registry.putManifest(image.bytes, to: "team/many", reference: "t\(n)", mediaType: MediaType.ociManifest).status == .created)
            }
            func names(_ path: String) async throws -> (names: [String], link: String?) {
                let answer = try await Self.get(registry, path)
                #expect(answer.status == .ok, "\(path)")
                return (((answer.json as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }, answer.response.headers[.link])
            }
            let oldest = try await names("/teams/team/artifacts/many/tags").names
            #expect(oldest.count == 45 && oldest.first == "t0" && oldest.last == "t44", "\(oldest)")
            var newest: [String] = []
            var path: String? = "/teams/team/artifacts/many/tags?order=newest&limit=10"
            while let next = path {
                let page = try await names(next)
                #expect(page.names.count <= 10)
                newest += page.names
                path = page.link.flatMap { $0.split(separator: ">").first.map { String($0.dropFirst()) } }
                if let path { #expect(path.contains("order=newest&limit=10&after="), "\(path)") }
            }
            #expect(newest == Array(oldest.reversed()))
            #expect(try await Self.get(registry, "/teams/team/artifacts/many/tags?order=sideways").status == .badRequest)

            // By prefix: every tag starting with it, in name order, paged with the filter kept.
            var found: [String] = []
            path = "/teams/team/artifacts/many/tags?prefix=t1&limit=4"
            while let next = path {
                let page = try await names(next)
                found += page.names
                path = page.link.flatMap { $0.split(separator: ">").first.map { String($0.dropFirst()) } }
                if let path { #expect(path.contains("prefix=t1&limit=4&after="), "\(path)") }
            }
            #expect(found == ["t1"] + (10...19).map { "t\($0)" })
            #expect(try await names("/teams/team/artifacts/many/tags?prefix=x").names == [], "an artifact with no such tag")
            #expect(try await Self.get(registry, "/teams/team/artifacts/none/tags?prefix=t").status == .notFound)
            for bad in ["t%20", "t'", String(repeating: "t", count: 129), ""] {
                #expect(try await Self.get(registry, "/teams/team/artifacts/many/tags?prefix=\(bad)").status == .badRequest, "\(bad)")
            }
            #expect(try await Self.get(registry, "/teams/team/artifacts/many/tags?prefix=t&order=newest").status == .badRequest)

            // By manifest: the tags of one image (the page's image view).
            let other = try await registry.pushImage(to: "team/many", reference: "other", config: #"{"other":1}"#, layers: ["other"])
            #expect(try await names("/teams/team/artifacts/many/tags?digest=\(other.digest)").names == ["other"])
            #expect(try await names("/teams/team/artifacts/many/tags?digest=\(image.digest)&limit=3").names == ["t0", "t1", "t2"])
            #expect(try await Self.get(registry, "/teams/team/artifacts/many/tags?digest=sha256:nothex").status == .badRequest)

            // Teams and artifacts by prefix.
            try await registry.pushImage(to: "team/manytools/cli", reference: "1", config: #"{"cli":1}"#, layers: ["cli"])
            try await registry.pushImage(to: "teamb/app", reference: "1", config: #"{"b":1}"#, layers: ["b"])
            try await registry.pushImage(to: "other/app", reference: "1", config: #"{"o":1}"#, layers: ["o"])
            #expect(try await Self.get(registry, "/teams?prefix=team").json as? [String] == ["team", "teamb"])
            #expect(try await Self.get(registry, "/teams?prefix=teamb").json as? [String] == ["teamb"])
            #expect(try await Self.get(registry, "/teams?prefix=team/").status == .badRequest, "a team has no /")
            #expect(try await Self.get(registry, "/teams/team/artifacts?prefix=many").json as? [String] == ["many", "manytools/cli"])
            #expect(try await Self.get(registry, "/teams/team/artifacts?prefix=manytools/").json as? [String] == ["manytools/cli"])
            #expect(try await Self.get(registry, "/teams/team/artifacts?prefix=zzz").json as? [String] == [])
            #expect(try await Self.get(registry, "/teams/team/artifacts?prefix=Many").status == .badRequest)
        }
    }

    /// A team's storage and each artifact's: every blob counted once per scope (a layer shared by
    /// two images of an artifact once for it, and once for the team however many artifacts link it).
    @Test(arguments: Backend.allCases)
    func artifactStatisticsCountEachBlobOnce(_ backend: Backend) async throws {
        try await RegistryHarness.withRegistry(backend) { registry in
            let shared = String(repeating: "s", count: 1000)
            try await registry.pushImage(to: "alpha/app", reference: "1", config: #"{"n":1}"#, layers: [shared, "one"])
            try await registry.pushImage(to: "alpha/app", reference: "2", config: #"{"n":2}"#, layers: [shared, "two"])
            try await Task.sleep(for: .milliseconds(20))
            try await registry.pushImage(to: "alpha/tool", reference: "1", config: #"{"n":3}"#, layers: [shared])
            try await registry.pushBlob(ByteBuffer(string: "untagged"), to: "alpha/blobonly")
            let team = try #require(try await Self.get(registry, "/stats/teams/alpha").json as? [String: Any])
            // n1, n2, n3 (7 bytes each), shared, one, two, and the untagged repository's blob: the team
            // stores it, though no artifact lists it.
            #expect(team["blobs"] as? Int == 7)
            #expect(team["storage"] as? Int == 3 * 7 + 1000 + 3 + 3 + 8)
            let artifacts = try #require(try await Self.get(registry, "/stats/teams/alpha/artifacts").json as? [[String: Any]])
            #expect(artifacts.map { $0["artifact"] as? String } == ["app", "tool"], "tagged artifacts only")
            #expect(artifacts[0]["blobs"] as? Int == 5 && artifacts[0]["storage"] as? Int == 2 * 7 + 1000 + 3 + 3)
            #expect(artifacts[0]["tags"] as? Int == 2)
            #expect(artifacts[1]["blobs"] as? Int == 2 && artifacts[1]["storage"] as? Int == 7 + 1000)
            let appPushed = try #require(artifacts[0]["last_push"] as? String), toolPushed = try #require(artifacts[1]["last_push"] as? String)
            #expect(appPushed < toolPushed, "\(appPushed) \(toolPushed)")
            let first = try await Self.get(registry, "/stats/teams/alpha/artifacts?limit=1")
            #expect((first.json as? [[String: Any]])?.count == 1)
            #expect(first.response.headers[.link] == #"</stats/teams/alpha/artifacts?limit=1&after=app>; rel="next""#)
            #expect(try await Self.get(registry, "/stats/teams/nobody/artifacts").status == .notFound)
        }
    }

    /// Who may read what: as for pulls. Also who may set the scm-source with a header.
    @Test func permissionsAndTrustedScmSource() async throws {
        let fixture = try await InstanceIdentityFixture.make()
        let document = try await fixture.sign(InstanceIdentityFixture.document(accountID: "123456789012"))
        let iid: HTTPFields = [.authorization: "Basic " + Data("instance-identity-document:\(document)".utf8).base64EncodedString()]
        let employee: HTTPFields = [.authorization: "Bearer employee-token"]
        let trusted: HTTPFields = [.authorization: AuthenticationTests.basic("trusted-token")]
        try await AuthenticationTests.withSecuredRegistry(instances: fixture) { registry, _ in
            func push(_ repository: String, _ tag: String, _ seed: Int, headers: HTTPFields) async throws -> TestResponse {
                var headers = headers
                let config = ByteBuffer(string: #"{"seed":\#(seed)}"#)
                let digest = DigestHasher.digest(of: config)
                let start = try await registry.request(.post, "/v2/\(repository)/blobs/uploads/?digest=\(digest)", headers: headers, body: config)
                #expect(start.status == .created)
                let manifest = Manifests.image(
                    mediaType: MediaType.ociManifest,
                    config: Manifests.descriptor("application/vnd.oci.image.config.v1+json", digest, config.readableBytes),
                    layers: []
                )
                headers[.contentType] = MediaType.ociManifest
                return try await registry.request(.put, "/v2/\(repository)/manifests/\(tag)", headers: headers, body: manifest)
            }
            var withSource = trusted
            withSource[ManifestHeader.scmSource] = Self.scm
            #expect(try await push("team/app", "1.0", 1, headers: withSource).status == .created)
            var untrusted = employee
            untrusted[ManifestHeader.scmSource] = #"{"url":"git:forged","revision":"0"}"#
            #expect(try await push("team/app", "2.0", 2, headers: untrusted).status == .created)
            var malformed = trusted
            malformed[ManifestHeader.scmSource] = "not json"
            let refused = try await push("team/app", "3.0", 3, headers: malformed)
            #expect(refused.status == .badRequest)
            #expect(Registry.errorCode(refused) == "MANIFEST_INVALID")
            #expect(try await push("other/app", "1.0", 4, headers: [.authorization: "Bearer admin-token"]).status == .created)

            let source = try #require(
                try await Self.get(registry, "/teams/team/artifacts/app/tags/1.0/scm-source", headers: employee).json as? [String: Any]
            )
            #expect(source["url"] as? String == "git:git@github.com:zalando-stups/pierone.git")
            #expect(source["origin"] as? String == "header")
            #expect(try await Self.get(registry, "/teams/team/artifacts/app/tags/2.0/scm-source", headers: employee).status == .notFound)
            let tags = try #require(try await Self.get(registry, "/teams/team/artifacts/app/tags", headers: employee).json as? [[String: Any]])
            #expect(tags.map { $0["created_by"] as? String } == ["ci", "alice"])

            // Anonymous callers are challenged; invalid tokens too.
            for path in ["/teams", "/teams/team/artifacts", "/teams/team/artifacts/app/tags", "/tags/abc", "/stats", "/stats/teams"] {
                let anonymous = try await Self.get(registry, path)
                #expect(anonymous.status == .unauthorized, "\(path)")
                #expect(anonymous.response.headers[.wwwAuthenticate] != nil, "\(path)")
                #expect(try await Self.get(registry, path, headers: [.authorization: "Bearer nonsense"]).status == .unauthorized)
                #expect(try await Self.get(registry, path, headers: employee).status != .unauthorized, "\(path)")
            }
            // An instance reads the tags of the repositories its account is mapped to, and no listing.
            #expect(try await Self.get(registry, "/teams/team/artifacts/app/tags", headers: iid).status == .ok)
            #expect(try await Self.get(registry, "/teams/other/artifacts/app/tags", headers: iid).status == .forbidden)
            #expect(try await Self.get(registry, "/teams/other/artifacts/app/tags/1.0/scm-source", headers: iid).status == .forbidden)
            #expect(try await Self.get(registry, "/teams", headers: iid).status == .forbidden)
            #expect(try await Self.get(registry, "/stats", headers: iid).status == .forbidden)
            // Pages and the health check need nothing.
            #expect(try await Self.get(registry, "/.well-known/health").status == .ok)
            #expect(try await Self.get(registry, "/ui/").status == .ok)
            #expect(try await Self.get(registry, "/openapi.json").status == .ok)
        }
        try await AuthenticationTests.withSecuredRegistry(publicRead: true) { registry, _ in
            let anonymous = try await Self.get(registry, "/teams")
            #expect(anonymous.status == .ok)
        }
    }

    /// The OpenAPI document is valid OpenAPI 3 (openapi-spec-validator) and covers every route.
    @Test func openAPIDocumentIsValidAndComplete() async throws {
        try await RegistryHarness.withRegistry { registry in
            let response = try await registry.request(.get, "/openapi.json")
            #expect(response.headers[.contentType] == "application/json")
            let file = registry.directory.appendingPathComponent("openapi.json")
            try FileManager.default.createDirectory(at: registry.directory, withIntermediateDirectories: true)
            try Data(buffer: response.body).write(to: file)
            try await Command.run([
                "python3", "-c",
                "import sys; from openapi_spec_validator import validate; "
                    + "from openapi_spec_validator.readers import read_from_filename; "
                    + "validate(read_from_filename(sys.argv[1])[0])",
                file.path,
            ])
            let document = try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
            let paths = try #require(document["paths"] as? [String: Any])
            for path in ["/teams", "/teams/{team}/artifacts", "/teams/{team}/artifacts/{artifact}/tags",
                         "/teams/{team}/artifacts/{artifact}/tags/{tag}/scm-source", "/tags/{image}", "/stats",
                         "/stats/teams", "/stats/teams/{team}", "/.well-known/health", "/v2/", "/v2/_catalog",
                         "/v2/{name}/tags/list", "/v2/{name}/manifests/{reference}", "/v2/{name}/blobs/{digest}",
                         "/v2/{name}/blobs/uploads/", "/v2/{name}/blobs/uploads/{uuid}", "/v2/{name}/referrers/{digest}"] {
                #expect(paths[path] != nil, "\(path)")
            }
        }
    }
}

enum ManifestHeader {
    static let scmSource = HTTPField.Name("X-SCM-Source")!
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
