import ArgumentParser
import Foundation
import PierOneApp

/// `pierone gc`: garbage collection and retention of a running registry.
struct GarbageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Garbage collection and retention of a running registry: dry run, run now, why.",
        discussion: """
            Calls the registry's /gc/ API, which needs a token with the scope application.write_all \
            (or a registry without authentication, called from its own machine).
            """,
        subcommands: [Run.self, Why.self],
        defaultSubcommand: Run.self
    )

    struct Connection: ParsableArguments {
        @Option(help: "The registry (default: PIERONE_URL, else url: in ~/.config/pierone.yaml, else http://127.0.0.1:8080).")
        var url: String?

        /// The token (it needs the scope application.write_all) from the same sources as `pierone login`.
        @OptionGroup var tokens: TokenOptions

        @Flag(help: "Print the JSON answer.")
        var json = false

        var client: GarbageClient {
            get throws {
                let environment = ProcessInfo.processInfo.environment
                let configured = self.url == nil ? try? RegistryLocation.resolve(nil, environment: environment) : nil
                let token = try self.tokens.sources(environment).resolve()
                return GarbageClient(url: self.url ?? configured ?? "http://127.0.0.1:8080", token: token)
            }
        }

        func print<Value: Encodable>(_ value: Value, _ text: (Value) -> String) throws {
            if self.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                Swift.print(String(decoding: try encoder.encode(value), as: UTF8.self))
            } else {
                Swift.print(text(value))
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run", abstract: "Run retention and a collection now (with --dry-run: list what they would delete, and why)."
        )

        @OptionGroup var connection: Connection

        @Flag(help: "Delete nothing: list what retention would delete and what the collector's queue holds.")
        var dryRun = false

        @Option(help: "Queue entries to list in a dry run (1-1000).")
        var limit = 1000

        @Flag(help: "Also scan the storage for blobs no metadata row holds (lists every blob: slow on a large bucket).")
        var orphans = false

        func run() async throws {
            do {
                if self.dryRun {
                    try self.connection.print(try await (try self.connection.client).plan(limit: self.limit, orphans: self.orphans)) {
                        GarbageClient.render($0)
                    }
                } else {
                    try self.connection.print(try await (try self.connection.client).run(orphans: self.orphans)) { GarbageClient.render($0) }
                }
            } catch let failure as GarbageClient.Failure {
                FileHandle.standardError.write(Data("pierone gc: \(failure)\n".utf8))
                throw ExitCode.failure
            } catch let failure as LoginFailure {
                FileHandle.standardError.write(Data("pierone gc: \(failure)\n".utf8))
                throw ExitCode.failure
            }
        }
    }

    struct Why: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "why", abstract: "Say what keeps a blob or manifest, or when and why it goes."
        )

        @OptionGroup var connection: Connection

        @Argument(help: "The digest (sha256:…).")
        var digest: String

        func run() async throws {
            do {
                try self.connection.print(try await (try self.connection.client).why(self.digest)) { GarbageClient.render($0) }
            } catch let failure as GarbageClient.Failure {
                FileHandle.standardError.write(Data("pierone gc why: \(failure)\n".utf8))
                throw ExitCode.failure
            } catch let failure as LoginFailure {
                FileHandle.standardError.write(Data("pierone gc why: \(failure)\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}
