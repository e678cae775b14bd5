import ArgumentParser
import Foundation
import Logging
import Hummingbird
import PierOneApp
import Runtime

@main
struct PierOneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pierone",
        abstract: "Pier One: a Docker/OCI container registry with immutable tags and team permissions.",
        subcommands: [
            Serve.self, MetadataCommand.self, BlobCommand.self, GatewayCommand.self, GarbageCommand.self, LoginCommand.self,
            CredentialHelperCommand.self, TeamsCommand.self, ArtifactsCommand.self, TagsCommand.self, LatestCommand.self,
            ScmSourceCommand.self, ImageCommand.self, InspectContentsCommand.self,
        ],
        defaultSubcommand: Serve.self
    )

    /// Called as `docker-credential-pierone` (a link to this binary), it is the credential helper.
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let name = (CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent }) ?? ""
        if name == "docker-credential-pierone" { arguments.insert("credential-helper", at: 0) }
        do {
            var command = try Self.parseAsRoot(arguments)
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            Self.exit(withError: error)
        }
    }
}

/// Reads the configuration, builds one service and runs it until SIGTERM or SIGINT.
enum Launcher {
    static func run<App: ApplicationProtocol>(_ build: (ServeConfiguration, Logger) async throws -> App) async throws {
        AllocatorTuning.apply()
        let configuration: ServeConfiguration
        do {
            configuration = try ServeConfiguration(environment: EnvironmentReader())
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("pierone: configuration error: \(error)\n".utf8))
            throw ExitCode(78)  // EX_CONFIG
        }
        if configuration.logJSON {
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
        }
        var logger = Logger(label: "pierone")
        logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
        let app: App
        do {
            app = try await build(configuration, logger)
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("pierone: configuration error: \(error)\n".utf8))
            throw ExitCode(78)
        }
        try await app.runService()
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run gateway, metadata and blob services in one process (SQLite + files by default)."
    )

    func run() async throws { try await Launcher.run(buildApplication) }
}

struct MetadataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metadata", abstract: "Run the metadata service (internal API on METADATA_PORT)."
    )

    func run() async throws { try await Launcher.run(buildMetadataApplication) }
}

struct BlobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blob", abstract: "Run the blob service (internal API on BLOB_PORT)."
    )

    func run() async throws { try await Launcher.run(buildBlobApplication) }
}

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway", abstract: "Run the public registry API, calling METADATA_URL and BLOB_URL."
    )

    func run() async throws { try await Launcher.run(buildGatewayApplication) }
}
