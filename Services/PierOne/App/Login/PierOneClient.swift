import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The Pier One REST API of a running registry (docs/api.md), for `pierone teams`, `artifacts`,
/// `tags`, `latest`, `scm-source` and `image`. Failures are `LoginFailure`s in words.
package struct PierOneClient: Sendable {
    let base: String
    let token: String?
    let http: HTTPClient

    package init(url: String, token: String?, http: HTTPClient = .shared) {
        self.base = url
        self.token = token
        self.http = http
    }

    package struct ScmSource: Codable, Sendable, Equatable {
        package var url: String?
        package var revision: String?
        package var author: String?
        package var status: String?
        package var created: String?
    }

    package func teams() async throws -> [String] {
        try await self.list("/teams", notFound: "no team has tagged artifacts")
    }

    package func artifacts(_ team: String) async throws -> [String] {
        try await self.list("/teams/\(Self.segment(team))/artifacts", notFound: "team \(team) does not exist or has no tagged artifact")
    }

    /// Oldest first (most recently pushed last): every tag, or only the `newest` (at most 1,000,
    /// one page of `?order=newest`, not the whole listing).
    package func tags(_ team: String, _ artifact: String, newest: Int? = nil) async throws -> [TagListing] {
        let path = "/teams/\(Self.segment(team))/artifacts/\(Self.path(artifact))/tags"
        let notFound = "artifact \(team)/\(artifact) does not exist or has no tags"
        guard let newest else { return try await self.list(path, notFound: notFound, repository: "\(team)/\(artifact)") }
        let (status, body) = try await self.get(path + "?order=newest&limit=\(min(max(newest, 1), 1000))")
        try self.check(status, body, notFound: notFound, repository: "\(team)/\(artifact)")
        return try self.decode([TagListing].self, body).reversed()
    }

    /// nil when the tag has no scm-source record (or does not exist).
    package func scmSource(_ team: String, _ artifact: String, _ tag: String) async throws -> ScmSource? {
        let path = "/teams/\(Self.segment(team))/artifacts/\(Self.path(artifact))/tags/\(Self.segment(tag))/scm-source"
        let (status, body) = try await self.get(path)
        if status == 404 { return nil }
        try self.check(status, body, notFound: "", repository: "\(team)/\(artifact)")
        return try self.decode(ScmSource.self, body)
    }

    /// The tags whose image id starts with `prefix`.
    package func image(_ prefix: String) async throws -> [ImageTagReference] {
        let (status, body) = try await self.get("/tags/\(Self.segment(prefix))")
        if status == 412 { throw LoginFailure("the prefix \(prefix) matches more than one image: give more digits") }
        try self.check(status, body, notFound: "no image id starts with \(prefix)")
        return try self.decode([ImageTagReference].self, body)
    }

    /// A listing, page by page (1,000 entries each) through the `Link` headers.
    private func list<Element: Decodable>(_ path: String, notFound: String, repository: String? = nil) async throws -> [Element] {
        var entries: [Element] = []
        var next: String? = path + "?limit=1000"
        var pages = 0
        while let current = next, pages < 10_000 {
            pages += 1
            let (status, body, link) = try await self.fetch(current)
            try self.check(status, body, notFound: notFound, repository: repository)
            entries += try self.decode([Element].self, body)
            next = link == current ? nil : link
        }
        return entries
    }

    private func get(_ path: String) async throws -> (Int, ByteBuffer) {
        let (status, body, _) = try await self.fetch(path)
        return (status, body)
    }

    /// The status, the body and the `rel="next"` path of `GET path`.
    private func fetch(_ path: String) async throws -> (Int, ByteBuffer, String?) {
        var request = HTTPClientRequest(url: self.base + path)
        self.authorize(&request)
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await self.send(request)
        let body = try await response.body.collect(upTo: 64 << 20)
        let link = response.headers["Link"].first.flatMap(Self.nextPath)
        return (Int(response.status.code), body, link)
    }

    func authorize(_ request: inout HTTPClientRequest) {
        if let token { request.headers.add(name: "Authorization", value: "Basic " + Data("oauth2:\(token)".utf8).base64EncodedString()) }
    }

    /// Sends `request`; the answer's body may stream for up to an hour (a layer).
    func send(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        do {
            return try await self.http.execute(request, timeout: .hours(1))
        } catch {
            throw LoginFailure("cannot reach \(self.base): \(error)")
        }
    }

    /// `</teams?limit=1000&after=x>; rel="next"` → `/teams?limit=1000&after=x` (a path on this registry only).
    static func nextPath(_ header: String) -> String? {
        for link in header.split(separator: ",") where link.contains(#"rel="next""#) {
            guard let open = link.firstIndex(of: "<"), let close = link.firstIndex(of: ">"), open < close else { continue }
            let target = String(link[link.index(after: open)..<close])
            return target.hasPrefix("/") && !target.hasPrefix("//") ? target : nil
        }
        return nil
    }

    func check(_ status: Int, _ body: ByteBuffer, notFound: String, repository: String? = nil) throws {
        guard !(200..<300).contains(status) else { return }
        let message = RegistryCheck.message(body)
        switch status {
        case 401:
            throw LoginFailure(
                self.token == nil
                    ? "the registry needs a token: set PIERONE_TOKEN, PIERONE_TOKEN_FILE or PIERONE_TOKEN_COMMAND, or give --token (docs/cli.md)"
                    : "the registry refused the token (401): it is expired or revoked; get a new one (docs/cli.md)"
            )
        case 403:
            let need = repository.map { "pull permission on \($0)" } ?? "a token that may list the registry (an OAuth2 user or service token)"
            throw LoginFailure("denied (403): this needs \(need)\(message.map { ": \($0)" } ?? "")")
        case 404:
            throw LoginFailure(notFound)
        default:
            throw LoginFailure("\(self.base) answered \(status)\(message.map { ": \($0)" } ?? "")")
        }
    }

    private func decode<Value: Decodable>(_ type: Value.Type, _ body: ByteBuffer) throws -> Value {
        do {
            return try JSONDecoder().decode(type, from: Data(buffer: body))
        } catch {
            throw LoginFailure("\(self.base) gave an answer that is not the Pier One API's: \(error)")
        }
    }

    /// One path segment, percent-encoded.
    static func segment(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? value
    }

    /// An artifact name with its slashes kept (`group/app`).
    static func path(_ value: String) -> String {
        value.split(separator: "/", omittingEmptySubsequences: false).map { Self.segment(String($0)) }.joined(separator: "/")
    }
}

extension TableFormat {
    /// `value` with C0, DEL and C1 control characters shown as `\u{…}`.
    static func printable(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: Self.isControl) else { return value }
        var text = ""
        for scalar in value.unicodeScalars {
            if Self.isControl(scalar) { text += "\\u{\(String(scalar.value, radix: 16))}" } else { text.unicodeScalars.append(scalar) }
        }
        return text
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}

/// Rows printed as an aligned table (the default), JSON or tab-separated values.
package enum TableFormat: String, CaseIterable, Sendable {
    case text, json, tsv

    /// `rows` (each as long as `columns`) in this format; `records` is what `json` prints.
    package func render<Records: Encodable>(columns: [String], rows: [[String]], records: Records) throws -> String {
        // Names come from whoever pushed: control characters would reach the terminal.
        let rows = rows.map { $0.map(Self.printable) }
        switch self {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            return String(decoding: try encoder.encode(records), as: UTF8.self)
        case .tsv:
            let clean = { (value: String) in value.replacingOccurrences(of: "\t", with: " ").replacingOccurrences(of: "\n", with: " ") }
            return ([columns] + rows).map { $0.map(clean).joined(separator: "\t") }.joined(separator: "\n")
        case .text:
            var widths = columns.map(\.count)
            for row in rows {
                for (index, value) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], value.count) }
            }
            let line = { (values: [String]) in
                values.enumerated().map { index, value in
                    index == values.count - 1 ? value : value.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                }.joined(separator: "  ")
            }
            return ([line(columns.map { $0.uppercased() })] + rows.map(line)).joined(separator: "\n")
        }
    }
}
