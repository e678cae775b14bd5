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
        var tag: PierOneClient.TagInfo
        func encode(to encoder: any Encoder) throws {
            try self.tag.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(self.team, forKey: Key("team"))
            try container.encode(self.artifact, forKey: Key("artifact"))
        }
    }

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        try await self.options.run("tags") { client in
            let names = self.artifacts.isEmpty ? try await client.artifacts(self.team) : self.artifacts
            let limit = self.limit ?? (self.artifacts.isEmpty ? 3 : 20)
            var rows: [Row] = []
            for artifact in names.sorted() {
                rows += try await client.tags(self.team, artifact).suffix(limit).map { Row(team: self.team, artifact: artifact, tag: $0) }
            }
            return try self.options.output.render(
                columns: ["team", "artifact", "tag", "created", "by", "immutable", "size"],
                rows: rows.map {
                    [$0.team, $0.artifact, $0.tag.name, $0.tag.created, $0.tag.createdBy, $0.tag.immutable.map { $0 ? "yes" : "no" } ?? "",
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
            guard let newest = try await client.tags(self.team, self.artifact).last(where: { $0.name != "latest" }) else {
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
