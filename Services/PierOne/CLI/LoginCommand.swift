import ArgumentParser
import Foundation
import PierOneApp

/// Where `pierone login` and the credential helper find a token (first found wins).
struct TokenOptions: ParsableArguments {
    @Option(help: "An OAuth2 token (prefer PIERONE_TOKEN, PIERONE_TOKEN_FILE or PIERONE_TOKEN_COMMAND: arguments are visible to other users).")
    var token: String?

    @Option(help: "A file holding the token (default: PIERONE_TOKEN_FILE).")
    var tokenFile: String?

    @Option(help: "A command printing a token, run with /bin/sh -c (default: PIERONE_TOKEN_COMMAND).")
    var tokenCommand: String?

    func sources(_ environment: [String: String]) -> TokenSources {
        TokenSources(token: self.token, tokenFile: self.tokenFile, tokenCommand: self.tokenCommand, environment: environment)
    }
}

/// `pierone login`: configures Docker (or podman) for the registry, after checking the
/// credentials against its `/v2/`.
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Configure Docker (or podman) to pull from and push to the registry.",
        discussion: """
            By default sets credHelpers[<host>] = "pierone" in ~/.docker/config.json ($DOCKER_CONFIG): \
            Docker then runs docker-credential-pierone, which fetches a fresh token for every pull. \
            --store-token writes the token into auths[<host>] instead; --podman writes podman's \
            auth file; --instance-identity logs an EC2 instance in with its identity document. \
            The credentials are checked against the registry's /v2/ first: a refused one changes no file.
            """
    )

    @Option(help: "The registry (default: PIERONE_URL, else url: in ~/.config/pierone.yaml).")
    var url: String?

    @OptionGroup var tokens: TokenOptions

    @Flag(help: "Write the token into the file (auths) instead of naming the credential helper.")
    var storeToken = false

    @Flag(help: "Write podman's auth file (REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json); stores the token.")
    var podman = false

    @Flag(help: "Log this EC2 instance in with its instance identity document (IMDSv2).")
    var instanceIdentity = false

    @Option(help: "The instance metadata service (default: PIERONE_IMDS_URL, else http://169.254.169.254).")
    var imdsURL: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var login = RegistryLogin(url: self.url, tokens: self.tokens.sources(environment), environment: environment)
        login.storeToken = self.storeToken
        login.podman = self.podman
        login.instanceIdentity = self.instanceIdentity
        login.imdsURL = self.imdsURL
        do {
            let outcome = try await login.perform()
            switch outcome.entry {
            case .credentialHelper:
                if Self.findOnPath("docker-credential-pierone", environment) == nil {
                    FileHandle.standardError.write(Data(
                        "pierone login: warning: docker-credential-pierone is not on PATH; link it to this binary (docs/cli.md) or use --store-token\n".utf8
                    ))
                }
                print("Logged in to \(outcome.host): \(outcome.path) names the credential helper docker-credential-pierone.")
            case .stored:
                print("Logged in to \(outcome.host): credentials stored in \(outcome.path).")
            }
        } catch let failure as LoginFailure {
            FileHandle.standardError.write(Data("pierone login: \(failure)\n".utf8))
            throw ExitCode.failure
        }
    }

    static func findOnPath(_ name: String, _ environment: [String: String]) -> String? {
        for directory in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// `pierone credential-helper ACTION`, which the binary also runs when called as
/// `docker-credential-pierone`: the docker-credential-helpers protocol.
struct CredentialHelperCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credential-helper",
        abstract: "The Docker credential helper (what docker-credential-pierone runs): get, store, erase, list."
    )

    @Argument(help: "get (server URL on standard input), store, erase or list.")
    var action: String

    @OptionGroup var tokens: TokenOptions

    func run() throws {
        let input = FileHandle.standardInput.readDataToEndOfFile()
        do {
            let answer = try CredentialHelper.answer(self.action, input: input, tokens: self.tokens.sources(ProcessInfo.processInfo.environment))
            FileHandle.standardOutput.write(answer)
        } catch let failure as LoginFailure {
            // The protocol reads the failure from standard output (the not-found answer exactly).
            FileHandle.standardOutput.write(Data("\(failure)\n".utf8))
            if failure.description == CredentialHelper.notFound {
                FileHandle.standardError.write(Data(
                    "docker-credential-pierone: no token: set PIERONE_TOKEN, PIERONE_TOKEN_FILE or PIERONE_TOKEN_COMMAND (docs/cli.md)\n".utf8
                ))
            }
            throw ExitCode.failure
        }
    }
}
