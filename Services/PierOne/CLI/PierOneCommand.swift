import ArgumentParser
import Foundation
import Logging
import PierOneApp
import Runtime

@main
struct PierOneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pierone",
        abstract: "Pier One: a Docker/OCI container registry with immutable tags and team permissions.",
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run gateway, metadata and blob services in one process (SQLite + files by default)."
    )

    func run() async throws {
        let environment = EnvironmentReader()
        let configuration: ServeConfiguration
        do {
            configuration = try ServeConfiguration(environment: environment)
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("pierone: configuration error: \(error)\n".utf8))
            throw ExitCode(78)  // EX_CONFIG
        }
        var logger = Logger(label: "pierone")
        logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
        let app = try await buildApplication(configuration, logger: logger)
        try await app.runService()
    }
}
