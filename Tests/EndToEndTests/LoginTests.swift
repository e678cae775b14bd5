import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PierOneApp
import Synchronization
import Testing
import TestSupport

/// `pierone login` and `docker-credential-pierone`: the files they write, the token sources, and
/// real clients pulling with only what login wrote.
@Suite struct LoginTests {
    static func json(_ data: Data) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func anAuthFileKeepsEverythingElse() throws {
        let existing = Data(
            #"{"auths":{"other.example.org":{"auth":"b3RoZXI6c2VjcmV0"},"pierone.example.org":{"auth":"b2xkOm9sZA=="}},"credsStore":"desktop","HttpHeaders":{"User-Agent":"x"},"credHelpers":{"gcr.io":"gcloud"}}"#.utf8
        )
        let helper = try Self.json(AuthFile.updated(existing, host: "pierone.example.org", entry: .credentialHelper("pierone")))
        #expect(helper["credsStore"] as? String == "desktop")
        #expect((helper["HttpHeaders"] as? [String: String]) == ["User-Agent": "x"])
        #expect((helper["credHelpers"] as? [String: String]) == ["gcr.io": "gcloud", "pierone.example.org": "pierone"])
        let helperAuths = try #require(helper["auths"] as? [String: Any])
        #expect(helperAuths["other.example.org"] != nil)
        #expect(helperAuths["pierone.example.org"] == nil, "a stored token the helper would shadow is dropped")

        // With a credsStore Docker would never read a stored token: refused, not silently useless.
        #expect(throws: LoginFailure.self) { try AuthFile.updated(existing, host: "pierone.example.org", entry: .stored(user: "oauth2", secret: "tok")) }
        var withoutStore = try Self.json(existing)
        withoutStore["credsStore"] = nil
        let existingWithoutStore = try JSONSerialization.data(withJSONObject: withoutStore)
        let stored = try Self.json(AuthFile.updated(existingWithoutStore, host: "pierone.example.org", entry: .stored(user: "oauth2", secret: "tok")))
        let auths = try #require(stored["auths"] as? [String: [String: Any]])
        #expect(auths["pierone.example.org"]?["auth"] as? String == Data("oauth2:tok".utf8).base64EncodedString())
        #expect(auths["other.example.org"]?["auth"] as? String == "b3RoZXI6c2VjcmV0")
        #expect((stored["credHelpers"] as? [String: String]) == ["gcr.io": "gcloud"])

        #expect(throws: LoginFailure.self) { try AuthFile.updated(Data("{not json".utf8), host: "h", entry: .credentialHelper("pierone")) }
        #expect(throws: LoginFailure.self) { try AuthFile.updated(Data(#"{"auths":[]}"#.utf8), host: "h", entry: .credentialHelper("pierone")) }
        let fresh = try Self.json(AuthFile.updated(nil, host: "localhost:5000", entry: .credentialHelper("pierone")))
        #expect((fresh["credHelpers"] as? [String: String]) == ["localhost:5000": "pierone"])
    }

    @Test func theFileIsWrittenWholeAndPrivate() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/nested/.docker/config.json"
            try AuthFile.update(path: path, host: "h:1", entry: .stored(user: "oauth2", secret: "s"))
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory + "/nested/.docker")
            #expect(leftovers == ["config.json"], "no temporary file stays behind")
            // A file that is not JSON is refused and left exactly as it was.
            try Data("garbage".utf8).write(to: URL(fileURLWithPath: path))
            #expect(throws: LoginFailure.self) { try AuthFile.update(path: path, host: "h:1", entry: .credentialHelper("pierone")) }
            #expect(FileManager.default.contents(atPath: path) == Data("garbage".utf8))
        }
    }

    @Test func namesFromPushersCannotDriveTheTerminal() throws {
        let table = try TableFormat.text.render(columns: ["name"], rows: [["evil\u{1B}]0;owned\u{07}"]], records: [String]())
        #expect(!table.contains("\u{1B}") && !table.contains("\u{07}"))
        #expect(table.contains("evil\\u{1b}]0;owned\\u{7}"))
    }

    @Test func aChainOfLinksKeepsTheRealFile() throws {
        try withTemporaryDirectory { directory in
            let real = directory + "/dotfiles/config.json"
            try FileManager.default.createDirectory(atPath: directory + "/dotfiles", withIntermediateDirectories: true)
            try Data(#"{"auths":{},"detachKeys":"ctrl-x"}"#.utf8).write(to: URL(fileURLWithPath: real))
            try FileManager.default.createSymbolicLink(atPath: directory + "/middle.json", withDestinationPath: "dotfiles/config.json")
            try FileManager.default.createSymbolicLink(atPath: directory + "/config.json", withDestinationPath: directory + "/middle.json")
            try AuthFile.update(path: directory + "/config.json", host: "h", entry: .credentialHelper("pierone"))
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: directory + "/config.json") == directory + "/middle.json")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: directory + "/middle.json") == "dotfiles/config.json")
            let written = try Self.json(try #require(FileManager.default.contents(atPath: real)))
            #expect(written["detachKeys"] as? String == "ctrl-x")
            #expect((written["credHelpers"] as? [String: String]) == ["h": "pierone"])
        }
    }

    @Test func theFirstTokenSourceWins() throws {
        try withTemporaryDirectory { directory in
            let file = directory + "/token"
            try Data("file-token\n".utf8).write(to: URL(fileURLWithPath: file))
            let command = "echo command-token"
            #expect(try TokenSources(token: "flag", tokenFile: file, tokenCommand: command, environment: ["PIERONE_TOKEN": "env"]).resolve() == "flag")
            #expect(try TokenSources(tokenFile: file, tokenCommand: command, environment: ["PIERONE_TOKEN": "env"]).resolve() == "env")
            #expect(try TokenSources(tokenFile: file, tokenCommand: command, environment: [:]).resolve() == "file-token")
            #expect(try TokenSources(environment: ["PIERONE_TOKEN_FILE": file]).resolve() == "file-token")
            #expect(try TokenSources(environment: ["PIERONE_TOKEN_COMMAND": command]).resolve() == "command-token")
            #expect(try TokenSources(environment: [:]).resolve() == nil)
            #expect(throws: LoginFailure.self) { try TokenSources(tokenCommand: "exit 3", environment: [:]).resolve() }
            #expect(throws: LoginFailure.self) { try TokenSources(tokenCommand: "echo two words", environment: [:]).resolve() }
            #expect(throws: LoginFailure.self) { try TokenSources(tokenFile: directory + "/missing", environment: [:]).resolve() }
            // A tool that leaves a background process holding its output does not hang the helper.
            let started = ContinuousClock.now
            #expect(try TokenSources(tokenCommand: "sleep 30 & echo agent-token", environment: [:]).resolve() == "agent-token")
            #expect(ContinuousClock.now - started < .seconds(20), "returned once the shell exited, not when its background child did")
        }
    }

    @Test func theRegistryComesFromTheFlagTheEnvironmentOrTheConfigFile() throws {
        try withTemporaryDirectory { home in
            #expect(try RegistryLocation.resolve("pierone.example.org/", environment: ["HOME": home]) == "https://pierone.example.org")
            #expect(try RegistryLocation.resolve(nil, environment: ["HOME": home, "PIERONE_URL": "http://localhost:8080"]) == "http://localhost:8080")
            #expect(throws: LoginFailure.self) { try RegistryLocation.resolve(nil, environment: ["HOME": home]) }
            try FileManager.default.createDirectory(atPath: home + "/.config", withIntermediateDirectories: true)
            try Data("# defaults\nurl: 'https://registry.example.org'\n".utf8).write(to: URL(fileURLWithPath: home + "/.config/pierone.yaml"))
            #expect(try RegistryLocation.resolve(nil, environment: ["HOME": home]) == "https://registry.example.org")
            #expect(throws: LoginFailure.self) { try RegistryLocation.resolve("ftp://x", environment: ["HOME": home]) }
            #expect(RegistryLocation.registryHost("http://localhost:8080") == "localhost:8080")
            #expect(RegistryLocation.registryHost("https://pierone.example.org") == "pierone.example.org")
            #expect(RegistryLocation.registryHost("https://pierone.example.org:443") == "pierone.example.org")
            #expect(RegistryLocation.registryHost("https://pierone.example.org:8443") == "pierone.example.org:8443")
        }
    }

    @Test func theCredentialHelperAnswersTheProtocol() throws {
        let tokens = TokenSources(environment: ["PIERONE_TOKEN": "employee-token"])
        let answer = try CredentialHelper.answer("get", input: Data("https://pierone.example.org\n".utf8), tokens: tokens)
        let credentials = try JSONDecoder().decode(CredentialHelper.Credentials.self, from: answer)
        #expect(credentials == CredentialHelper.Credentials(ServerURL: "https://pierone.example.org", Username: "oauth2", Secret: "employee-token"))
        #expect(try CredentialHelper.answer("list", input: Data(), tokens: tokens) == Data("{}".utf8))
        #expect(try CredentialHelper.answer("store", input: Data(#"{"ServerURL":"x","Username":"u","Secret":"s"}"#.utf8), tokens: tokens).isEmpty)
        let missing = #expect(throws: LoginFailure.self) {
            try CredentialHelper.answer("get", input: Data("h".utf8), tokens: TokenSources(environment: [:]))
        }
        #expect(missing?.description == CredentialHelper.notFound, "clients compare the answer exactly")
    }

    /// Login against a live registry: a refused token changes nothing; after a login skopeo pulls
    /// with only the written file (the stored token, and the credential helper as containers/image
    /// runs it: the `pierone` binary called `docker-credential-pierone`).
    @Test func skopeoPullsWithOnlyWhatLoginWrote() async throws {
        try await ClientTests.withScratch { scratch in
            try await ClientTests.makeOCILayout(at: scratch, content: "image for login")
            try await AuthenticationTests.withSecuredRegistry { registry, _ in
                let layout = "oci:\(scratch.appendingPathComponent("layout").path):1.0"
                try await ClientTests.skopeo([
                    "copy", "--dest-tls-verify=false", "--dest-creds", "oauth2:employee-token", layout, "docker://\(registry.host)/team/app:1.0",
                ])
                let home = scratch.appendingPathComponent("home").path
                let config = scratch.appendingPathComponent("docker").path
                let environment = ["HOME": home, "DOCKER_CONFIG": config]
                let url = "http://\(registry.host)"

                var refused = RegistryLogin(url: url, tokens: TokenSources(token: "forged-token", environment: [:]), environment: environment)
                refused.storeToken = true
                let failure = await #expect(throws: LoginFailure.self) { try await refused.perform() }
                #expect(failure?.description.contains("refused the token") == true)
                #expect(failure?.description.contains("forged-token") == false, "a token is never printed")
                #expect(!FileManager.default.fileExists(atPath: config + "/config.json"))

                var stored = RegistryLogin(url: url, tokens: TokenSources(token: "employee-token", environment: [:]), environment: environment)
                stored.storeToken = true
                let outcome = try await stored.perform()
                #expect(outcome.host == registry.host)
                let pulled = scratch.appendingPathComponent("pulled").path
                try await ClientTests.skopeo([
                    "copy", "--src-tls-verify=false", "--authfile", outcome.path, "docker://\(registry.host)/team/app:1.0", "oci:\(pulled):a",
                ])
                #expect(try String(contentsOfFile: home + "/.config/pierone.yaml", encoding: .utf8) == "url: \(url)\n")

                // The credential helper: the default login names it; skopeo runs it from PATH.
                let helperOutcome = try await RegistryLogin(
                    url: url, tokens: TokenSources(token: "employee-token", environment: [:]), environment: environment
                ).perform()
                #expect(helperOutcome.entry == .credentialHelper("pierone"))
                let written = try Self.json(try #require(FileManager.default.contents(atPath: helperOutcome.path)))
                #expect((written["credHelpers"] as? [String: String]) == [registry.host: "pierone"])
                let binaries = scratch.appendingPathComponent("bin").path
                try FileManager.default.createDirectory(atPath: binaries, withIntermediateDirectories: true)
                try FileManager.default.createSymbolicLink(atPath: binaries + "/docker-credential-pierone", withDestinationPath: try Self.pieroneBinary())
                let path = binaries + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
                let answer = try await Command.run(
                    ["sh", "-c", "echo \(registry.host) | docker-credential-pierone get"], environment: ["PATH": path, "PIERONE_TOKEN": "employee-token"]
                )
                let credentials = try JSONDecoder().decode(CredentialHelper.Credentials.self, from: Data(answer.utf8))
                #expect(credentials.Username == "oauth2" && credentials.Secret == "employee-token")
                try await Command.run(
                    ["skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", "--authfile", helperOutcome.path,
                     "docker://\(registry.host)/team/app:1.0", "oci:\(pulled):b"],
                    environment: ["PATH": path, "PIERONE_TOKEN": "employee-token"]
                )
                // Without a token the helper fails as the protocol says, and so does the pull.
                await #expect(throws: Command.Failure.self) {
                    try await Command.run(
                        ["skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", "--authfile", helperOutcome.path,
                         "docker://\(registry.host)/team/app:1.0", "oci:\(pulled):c"],
                        environment: ["PATH": path, "PIERONE_TOKEN": "", "PIERONE_TOKEN_FILE": "", "PIERONE_TOKEN_COMMAND": ""]
                    )
                }
            }
        }
    }

    /// The real clients with what `pierone login` wrote: the Docker CLI (`docker manifest inspect`,
    /// which talks to the registry without a daemon) through the credential helper, and podman
    /// through the auth file `--podman` wrote; each refused without the token.
    @Test func dockerAndPodmanUseWhatLoginWrote() async throws {
        try await ClientTests.withScratch { scratch in
            try await ClientTests.makeOCILayout(at: scratch, content: "image for docker and podman")
            try await AuthenticationTests.withSecuredRegistry { registry, _ in
                // Docker schema 2: Docker 20.10's `manifest inspect` does not ask for OCI manifests.
                try await ClientTests.skopeo([
                    "copy", "--format", "v2s2", "--dest-tls-verify=false", "--dest-creds", "oauth2:employee-token",
                    "oci:\(scratch.appendingPathComponent("layout").path):1.0", "docker://\(registry.host)/team/app:1.0",
                ])
                let url = "http://\(registry.host)"
                let home = scratch.appendingPathComponent("home").path
                let config = scratch.appendingPathComponent("docker").path
                let binaries = scratch.appendingPathComponent("bin").path
                try FileManager.default.createDirectory(atPath: binaries, withIntermediateDirectories: true)
                try FileManager.default.createSymbolicLink(atPath: binaries + "/docker-credential-pierone", withDestinationPath: try Self.pieroneBinary())
                let path = binaries + ":/usr/bin:/bin"

                // Docker: the default login names the helper; the CLI runs it from PATH.
                let login = try await RegistryLogin(
                    url: url, tokens: TokenSources(token: "employee-token", environment: [:]), environment: ["HOME": home, "DOCKER_CONFIG": config]
                ).perform()
                #expect(login.entry == .credentialHelper("pierone"))
                let docker = ["/usr/bin/docker", "manifest", "inspect", "--insecure", "\(registry.host)/team/app:1.0"]
                let manifest = try await Command.run(
                    docker, environment: ["PATH": path, "HOME": home, "DOCKER_CONFIG": config, "PIERONE_TOKEN": "employee-token"]
                )
                #expect(manifest.contains("\"schemaVersion\": 2"), "\(manifest)")
                await #expect(throws: Command.Failure.self, "without a token the helper has nothing and the pull is refused") {
                    try await Command.run(
                        docker, environment: [
                            "PATH": path, "HOME": home, "DOCKER_CONFIG": config, "PIERONE_TOKEN": "", "PIERONE_TOKEN_FILE": "",
                            "PIERONE_TOKEN_COMMAND": "",
                        ]
                    )
                }

                // podman: `--podman` stores the token in its auth file.
                let authFile = scratch.appendingPathComponent("containers/auth.json").path
                var podmanLogin = RegistryLogin(
                    url: url, tokens: TokenSources(token: "employee-token", environment: [:]), environment: ["HOME": home, "REGISTRY_AUTH_FILE": authFile]
                )
                podmanLogin.podman = true
                #expect(try await podmanLogin.perform().path == authFile)
                let storage = URL(fileURLWithPath: "/tmp/pm-\(UUID().uuidString.prefix(8))")
                defer { try? FileManager.default.removeItem(at: storage) }
                try await HTTPSTests.podman(
                    storage, ["pull", "--tls-verify=false", "\(registry.host)/team/app:1.0"], environment: ["REGISTRY_AUTH_FILE": authFile]
                )
                try await HTTPSTests.podman(
                    storage, ["push", "--tls-verify=false", "\(registry.host)/team/app:1.0", "docker://\(registry.host)/team/podman:1.0"],
                    environment: ["REGISTRY_AUTH_FILE": authFile]
                )
                let empty = scratch.appendingPathComponent("empty.json").path
                try Data("{}".utf8).write(to: URL(fileURLWithPath: empty))
                await #expect(throws: Command.Failure.self, "without the auth file podman is refused") {
                    try await HTTPSTests.podman(
                        storage, ["push", "--tls-verify=false", "\(registry.host)/team/app:1.0", "docker://\(registry.host)/team/podman:2.0"],
                        environment: ["REGISTRY_AUTH_FILE": empty]
                    )
                }
            }
        }
    }

    /// `--instance-identity` against an IMDSv2 stand-in serving a document signed by the test CA
    /// the registry trusts: a pull works with the written file, a push is refused.
    @Test func anInstanceLogsInWithItsIdentityDocument() async throws {
        let fixture = try await InstanceIdentityFixture.make()
        let document = try await fixture.sign(InstanceIdentityFixture.document(accountID: "123456789012"))
        let imds = IMDSStandIn(document: document)
        try await ClientTests.withScratch { scratch in
            try await ClientTests.makeOCILayout(at: scratch, content: "image for an instance")
            try await AuthenticationTests.withSecuredRegistry(instances: fixture) { registry, _ in
                try await imds.run { endpoint in
                    let layout = "oci:\(scratch.appendingPathComponent("layout").path):1.0"
                    try await ClientTests.skopeo([
                        "copy", "--dest-tls-verify=false", "--dest-creds", "oauth2:admin-token", layout, "docker://\(registry.host)/team/app:1.0",
                    ])
                    let environment = ["HOME": scratch.path, "REGISTRY_AUTH_FILE": scratch.appendingPathComponent("auth.json").path]
                    var login = RegistryLogin(url: "http://\(registry.host)", tokens: TokenSources(environment: [:]), environment: environment)
                    login.instanceIdentity = true
                    login.podman = true
                    login.imdsURL = endpoint
                    let outcome = try await login.perform()
                    #expect(imds.tokenRequests.withLock { $0 } == 1)
                    #expect(outcome.entry == .stored(user: "instance-identity-document", secret: document.filter { !$0.isWhitespace }))
                    let pulled = scratch.appendingPathComponent("pulled").path
                    try await ClientTests.skopeo([
                        "copy", "--src-tls-verify=false", "--authfile", outcome.path, "docker://\(registry.host)/team/app:1.0", "oci:\(pulled):a",
                    ])
                    await #expect(throws: Command.Failure.self) {
                        try await ClientTests.skopeo([
                            "copy", "--dest-tls-verify=false", "--authfile", outcome.path, layout, "docker://\(registry.host)/team/pushed:1.0",
                        ])
                    }
                }
            }
        }
    }

    /// The API commands of the built `pierone` binary against known pushes: tables, JSON, TSV, and
    /// errors in words.
    @Test func apiCommandsAnswerAboutKnownPushes() async throws {
        try await ClientTests.withScratch { scratch in
            try await ClientTests.makeOCILayout(at: scratch, content: "image for the API commands", files: ["app.conf": "threads=4\n"])
            try await AuthenticationTests.withSecuredRegistry { registry, _ in
                let layout = "oci:\(scratch.appendingPathComponent("layout").path):1.0"
                for target in ["team/app:1.0", "team/app:2.0", "team/group/svc:1.0"] {
                    try await ClientTests.skopeo([
                        "copy", "--dest-tls-verify=false", "--dest-creds", "oauth2:employee-token", layout, "docker://\(registry.host)/\(target)",
                    ])
                }
                let binary = try Self.pieroneBinary()
                let url = "http://\(registry.host)"
                let environment = ["HOME": scratch.path, "PIERONE_TOKEN": "employee-token", "PIERONE_URL": ""]
                func pierone(_ arguments: [String], token: String = "employee-token") async throws -> String {
                    try await Command.run([binary] + arguments + ["--url", url], environment: environment.merging(["PIERONE_TOKEN": token]) { $1 })
                }
                #expect(try await pierone(["teams"]) == "NAME\nteam\n")
                let artifacts = try JSONSerialization.jsonObject(with: Data(try await pierone(["artifacts", "team", "-o", "json"]).utf8))
                #expect((artifacts as? [[String: String]]) == [["artifact": "app", "team": "team"], ["artifact": "group/svc", "team": "team"]])
                let tsv = try await pierone(["tags", "team", "app", "--output", "tsv"]).split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
                #expect(tsv.first == ["team", "artifact", "tag", "created", "by", "immutable", "size"])
                #expect(tsv.dropFirst().map { $0[2] } == ["1.0", "2.0"])
                #expect(tsv.dropFirst().allSatisfy { $0[4] == "alice" && $0[5] == "yes" })
                let newest = try await pierone(["tags", "team", "-l", "1"])
                #expect(newest.split(separator: "\n").count == 3, "a header and the newest tag of each artifact")
                #expect(newest.contains("group/svc"))
                #expect(try await pierone(["latest", "team", "app"]) == "2.0\n")
                let tags = try await PierOneClient(url: url, token: "employee-token").tags("team", "app")
                let image = try #require(tags.first?.image).replacingOccurrences(of: "sha256:", with: "")
                let found = try JSONDecoder().decode([ImageTagReference].self, from: Data(try await pierone(["image", String(image.prefix(12)), "-o", "json"]).utf8))
                #expect(Set(found.map { "\($0.team)/\($0.artifact):\($0.name)" }) == ["team/app:1.0", "team/app:2.0", "team/group/svc:1.0"])
                let scm = try JSONSerialization.jsonObject(with: Data(try await pierone(["scm-source", "team", "app", "1.0", "-o", "json"]).utf8)) as? [[String: Any]]
                #expect(scm?.first?["tag"] as? String == "1.0")
                #expect(scm?.first?["created_by"] as? String == "alice")
                // inspect-contents streams the top layer through gunzip and tar.
                let contents = try JSONDecoder().decode(
                    [PierOneClient.LayerFile].self, from: Data(try await pierone(["inspect-contents", "team", "app", "1.0", "-o", "json"]).utf8)
                )
                let byName = Dictionary(uniqueKeysWithValues: contents.map { ($0.name, $0) })
                #expect(byName["hello.txt"]?.size == Int64("image for the API commands".utf8.count))
                #expect(byName["hello.txt"]?.type == "file")
                #expect(byName["app.conf"]?.size == 10)
                #expect(contents.allSatisfy { $0.layer == 0 && $0.digest == contents.first?.digest })
                let table = try await pierone(["inspect-contents", "team", "group/svc", "1.0"])
                #expect(table.hasPrefix("LAYER  TYPE"))
                #expect(table.contains("hello.txt"))
                let noTag = await #expect(throws: Command.Failure.self) { try await pierone(["inspect-contents", "team", "app", "9.9"]) }
                #expect(noTag?.description.contains("team/app:9.9 does not exist") == true)
                // Errors in words, never the token.
                let refused = await #expect(throws: Command.Failure.self) { try await pierone(["teams"], token: "forged-token") }
                #expect(refused?.description.contains("refused the token") == true)
                #expect(refused?.description.contains("forged-token") == false)
                let missing = await #expect(throws: Command.Failure.self) { try await pierone(["tags", "nosuchteam"]) }
                #expect(missing?.description.contains("team nosuchteam does not exist") == true)
                let anonymous = await #expect(throws: Command.Failure.self) { try await pierone(["teams"], token: "") }
                #expect(anonymous?.description.contains("needs a token") == true)
                // `pierone gc` takes its token from the same sources (here a token command).
                let plan = try await pierone(["gc", "--dry-run", "--json", "--token-command", "echo admin-token"], token: "")
                #expect(plan.contains("gracePeriodSeconds"), "\(plan)")
                await #expect(throws: Command.Failure.self, "an employee token lacks application.write_all") {
                    try await pierone(["gc", "--dry-run"], token: "employee-token")
                }
            }
        }
    }

    /// The `pierone` executable built next to the test bundle (`swift build --build-tests`).
    static func pieroneBinary() throws -> String {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("pierone").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw LoginFailure("no pierone binary next to \(directory.path): run swift build --build-tests first")
    }
}

/// A small real HTTP server standing in for the EC2 instance metadata service (IMDSv2): a session
/// token from `PUT /latest/api/token`, the PKCS#7 document only with that token.
final class IMDSStandIn: Sendable {
    let document: String
    let tokenRequests = Mutex(0)
    static let sessionToken = "imds-session-token"

    init(document: String) {
        self.document = document
    }

    func run<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let router = Router()
        router.put("/latest/api/token") { request, _ -> Response in
            self.tokenRequests.withLock { $0 += 1 }
            guard request.headers[HTTPField.Name("X-aws-ec2-metadata-token-ttl-seconds")!] != nil else { return Response(status: .badRequest) }
            return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: Self.sessionToken)))
        }
        router.get("/latest/dynamic/instance-identity/pkcs7") { request, _ -> Response in
            guard request.headers[HTTPField.Name("X-aws-ec2-metadata-token")!] == Self.sessionToken else { return Response(status: .unauthorized) }
            return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: self.document)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            try await body("http://127.0.0.1:\(client.port ?? 0)")
        }
    }
}

func withTemporaryDirectory(_ body: (String) throws -> Void) throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-login-\(UUID())").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try body(directory)
}
