import Contracts
import ArgumentParser
import Foundation
import PierOneApp

extension TableFormat: ExpressibleByArgument {}

/// What every API command takes: the registry, the token, the output format.
struct APIOptions: ParsableArguments {
    @Option(help: "The registry (default: PIERONE_URL, else url: in ~/.config/pierone.yaml).")
    var url: String?

    @OptionGroup var tokens: TokenOptions

    @Option(name: [.short, .long], help: "text (an aligned table), json or tsv.")
    var output: TableFormat = .text

    func client() throws -> PierOneClient {
        let environment = ProcessInfo.processInfo.environment
        return PierOneClient(url: try RegistryLocation.resolve(self.url, environment: environment), token: try self.tokens.sources(environment).resolve())
    }

    /// Runs `body`, printing its table; a failure is printed in words with the command's name.
    func run(_ name: String, _ body: (PierOneClient) async throws -> String) async throws {
        do {
            let text = try await body(try self.client())
            if !text.isEmpty { print(text) }
        } catch let failure as LoginFailure {
            FileHandle.standardError.write(Data("pierone \(name): \(failure)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct TeamsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "teams", abstract: "List the teams that have tagged artifacts.")
    @OptionGroup var options: APIOptions

    func run() async throws {
        try await self.options.run("teams") { client in
            let teams = try await client.teams()
            return try self.options.output.render(columns: ["name"], rows: teams.map { [$0] }, records: teams.map { ["name": $0] })
        }
    }
}

struct ArtifactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "artifacts", abstract: "List a team's artifacts.")
    @OptionGroup var options: APIOptions
    @Argument(help: "The team.") var team: String

    func run() async throws {
        try await self.options.run("artifacts") { client in
            let artifacts = try await client.artifacts(self.team)
            return try self.options.output.render(
                columns: ["team", "artifact"], rows: artifacts.map { [self.team, $0] },
                records: artifacts.map { ["team": self.team, "artifact": $0] }
            )
        }
    }
}

struct TagsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tags", abstract: "List the newest tags of a team's artifacts (all its artifacts unless some are named)."
    )
    @OptionGroup var options: APIOptions
    @Argument(help: "The team.") var team: String
    @Argument(help: "Artifacts (default: every artifact of the team).") var artifacts: [String] = []
    @Option(name: [.short, .long], help: "Tags per artifact, the newest (default: 20 with artifacts named, else 3).") var limit: Int?

    struct Row: Encodable {
        var team: String
        var artifact: String
        var tag: TagListing
        func encode(to encoder: any Encoder) throws {
            try self.tag.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(self.team, forKey: Key("team"))
            try container.encode(self.artifact, forKey: Key("artifact"))
        }
    }

    func validate() throws {
        if let limit, !(1...1000).contains(limit) { throw ValidationError("--limit must be between 1 and 1000") }
    }

    func run() async throws {
        try await self.options.run("tags") { client in
            let names = self.artifacts.isEmpty ? try await client.artifacts(self.team) : self.artifacts
            let limit = self.limit ?? (self.artifacts.isEmpty ? 3 : 20)
            var rows: [Row] = []
            for artifact in names.sorted() {
                rows += try await client.tags(self.team, artifact, newest: limit).map { Row(team: self.team, artifact: artifact, tag: $0) }
            }
            return try self.options.output.render(
                columns: ["team", "artifact", "tag", "created", "by", "immutable", "size"],
                rows: rows.map {
                    [$0.team, $0.artifact, $0.tag.name, $0.tag.created, $0.tag.createdBy ?? "", $0.tag.immutable.map { $0 ? "yes" : "no" } ?? "",
                     $0.tag.totalSize.map(Self.size) ?? ""]
                },
                records: rows
            )
        }
    }

    static func size(_ bytes: Int64) -> String {
        ByteCountFormatter.string(fromByteCount: bytes, countStyle: .binary)
    }
}

struct LatestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "latest", abstract: "Print the most recently pushed tag of an artifact.")
    @OptionGroup var options: APIOptions
    @Argument(help: "The team.") var team: String
    @Argument(help: "The artifact.") var artifact: String

    func run() async throws {
        try await self.options.run("latest") { client in
            // The two newest: one of them is not `latest`.
            guard let newest = try await client.tags(self.team, self.artifact, newest: 2).last(where: { $0.name != "latest" }) else {
                throw LoginFailure("\(self.team)/\(self.artifact) has no tag but latest")
            }
            return self.options.output == .text ? newest.name : try self.options.output.render(columns: ["tag"], rows: [[newest.name]], records: newest)
        }
    }
}

struct ScmSourceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scm-source", abstract: "Show the scm-source (repository, revision, author) of an artifact's tags."
    )
    @OptionGroup var options: APIOptions
    @Argument(help: "The team.") var team: String
    @Argument(help: "The artifact.") var artifact: String
    @Argument(help: "Tags (default: every tag).") var tags: [String] = []

    struct Row: Encodable {
        var tag: String
        var createdBy: String
        var created: String
        var source: PierOneClient.ScmSource?
        enum CodingKeys: String, CodingKey {
            case tag, created, source = "scm_source"
            case createdBy = "created_by"
        }
    }

    func run() async throws {
        try await self.options.run("scm-source") { client in
            let known = try await client.tags(self.team, self.artifact)
            let wanted = self.tags.isEmpty ? known.map(\.name) : self.tags
            var rows: [Row] = []
            for tag in wanted {
                let info = known.first { $0.name == tag }
                let source = try await client.scmSource(self.team, self.artifact, tag)
                rows.append(Row(tag: tag, createdBy: info?.createdBy ?? "", created: info?.created ?? "", source: source))
            }
            return try self.options.output.render(
                columns: ["tag", "author", "url", "revision", "status", "created", "by"],
                rows: rows.map {
                    [$0.tag, $0.source?.author ?? "", $0.source?.url ?? "", String(($0.source?.revision ?? "").prefix(10)), $0.source?.status ?? "",
                     $0.created, $0.createdBy]
                },
                records: rows
            )
        }
    }
}

struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "image", abstract: "List the tags whose image id starts with a prefix.")
    @OptionGroup var options: APIOptions
    @Argument(help: "An image id prefix (hexadecimal, as docker images shows).") var prefix: String

    func run() async throws {
        try await self.options.run("image") { client in
            let tags = try await client.image(self.prefix)
            return try self.options.output.render(columns: ["team", "artifact", "tag"], rows: tags.map { [$0.team, $0.artifact, $0.name] }, records: tags)
        }
    }
}

/// A coding key from a string.
struct Key: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ value: String) { self.stringValue = value }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

struct InspectContentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect-contents", abstract: "List the files in the top layers of an image (the layers streamed, never stored)."
    )
    @OptionGroup var options: APIOptions
    @Argument(help: "The team.") var team: String
    @Argument(help: "The artifact.") var artifact: String
    @Argument(help: "The tag.") var tag: String
    @Option(name: [.short, .long], help: "Layers to list, from the top (1-1000).") var limit = 1

    func validate() throws {
        guard (1...1000).contains(self.limit) else { throw ValidationError("--limit must be from 1 to 1000") }
    }

    func run() async throws {
        // A progress line on a terminal, redrawn at most every 100 ms.
        let terminal = isatty(STDERR_FILENO) == 1
        let last = LastDraw()
        var progress: PierOneClient.Progress?
        if terminal {
            progress = { layer, layers, bytes, total in
                guard last.due() else { return }
                let share = total > 0 ? " (\(Int(min(100, Double(bytes) * 100 / Double(total))))%)" : ""
                let line = "\r\u{1B}[Klayer \(layer + 1)/\(layers): \(bytes >> 20) MiB" + share
                FileHandle.standardError.write(Data(line.utf8))
            }
        }
        try await self.options.run("inspect-contents") { client in
            let files = try await client.layerContents(self.team, self.artifact, self.tag, limit: self.limit, progress: progress)
            if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            return try self.options.output.render(
                columns: ["layer", "type", "mode", "size", "modified", "name"],
                rows: files.map { [String($0.layer), $0.type, $0.mode, String($0.size), $0.modified, $0.name] },
                records: files
            )
        }
    }
}

/// When a progress line was last drawn.
final class LastDraw: @unchecked Sendable {
    private let lock = NSLock()
    private var last = ContinuousClock.now - .seconds(1)

    func due() -> Bool {
        self.lock.withLock {
            let now = ContinuousClock.now
            guard now - self.last >= .milliseconds(100) else { return false }
            self.last = now
            return true
        }
    }
}
