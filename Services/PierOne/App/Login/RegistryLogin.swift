import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// A failure `pierone login` and `docker-credential-pierone` report in words and exit with.
/// It never contains a token.
package struct LoginFailure: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// Where a token comes from; the first source that gives one wins: `--token`, `PIERONE_TOKEN`,
/// a token file (`--token-file`, `PIERONE_TOKEN_FILE`), a command that prints one
/// (`--token-command`, `PIERONE_TOKEN_COMMAND`, run with `/bin/sh -c`: a company's token tool).
package struct TokenSources: Sendable {
    package var token: String?
    package var tokenFile: String?
    package var tokenCommand: String?
    package var environment: [String: String]

    package init(token: String? = nil, tokenFile: String? = nil, tokenCommand: String? = nil, environment: [String: String]) {
        self.token = token
        self.tokenFile = tokenFile
        self.tokenCommand = tokenCommand
        self.environment = environment
    }

    /// Longest token accepted from a file or a command (a JWT is a few KiB).
    static let maximumLength = 64 * 1024
    /// Longest a token command may take (it may wait for a login in a browser).
    static let commandTimeout = Duration.seconds(120)

    /// The token, or nil when no source is configured. A configured source that fails is an error.
    package func resolve() throws -> String? {
        if let token = Self.nonEmpty(self.token) { return token }
        if let token = Self.nonEmpty(self.environment["PIERONE_TOKEN"]) { return token }
        if let file = Self.nonEmpty(self.tokenFile) ?? Self.nonEmpty(self.environment["PIERONE_TOKEN_FILE"]) {
            guard let handle = FileHandle(forReadingAtPath: file), let data = try? handle.read(upToCount: Self.maximumLength + 1) else {
                throw LoginFailure("cannot read the token file \(file) (--token-file, PIERONE_TOKEN_FILE)")
            }
            try? handle.close()
            return try Self.checked(data, from: "the token file \(file)")
        }
        if let command = Self.nonEmpty(self.tokenCommand) ?? Self.nonEmpty(self.environment["PIERONE_TOKEN_COMMAND"]) {
            return try Self.checked(try Self.run(command), from: "the token command (--token-command, PIERONE_TOKEN_COMMAND)")
        }
        return nil
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let value = value?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    private static func checked(_ data: Data, from source: String) throws -> String {
        guard data.count <= Self.maximumLength else { throw LoginFailure("\(source) gave more than 64 KiB: not a token") }
        guard let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else {
            throw LoginFailure("\(source) gave no token")
        }
        guard !text.contains(where: { $0.isWhitespace || $0.isNewline }), text.allSatisfy({ $0.isASCII }) else {
            throw LoginFailure("\(source) gave more than one word: not a token")
        }
        return text
    }

    /// Runs `command` with `/bin/sh -c`; its standard error passes through (a token tool may ask
    /// for a login there), its output (at most 64 KiB and a byte) is the token. `posix_spawn`, not
    /// Foundation's `Process` (whose `run()` crashes now and then on Linux, docs/architecture.md).
    private static func run(_ command: String) throws -> Data {
        let source = "the token command (--token-command, PIERONE_TOKEN_COMMAND)"
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw LoginFailure("cannot run \(source): \(String(cString: strerror(errno)))") }
        // Close-on-exec (pipe2 is not exported to Swift): no other child keeps the pipe open.
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        let arguments = ["/bin/sh", "-c", command]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid = pid_t()
        let code = argv.withUnsafeBufferPointer { buffer in
            posix_spawn(&pid, "/bin/sh", &actions, nil, UnsafeMutablePointer(mutating: buffer.baseAddress!), environ)
        }
        close(pipeEnds[1])
        defer { close(pipeEnds[0]) }
        guard code == 0 else { throw LoginFailure("cannot run \(source): \(String(cString: strerror(code)))") }
        // Read until end of file, or until the shell has exited and nothing more is waiting (a
        // background agent the tool started may keep the pipe open), for at most two minutes.
        let deadline = ContinuousClock.now + Self.commandTimeout
        var output = Data()
        var chunk = [UInt8](repeating: 0, count: 4096)
        var status: Int32 = 0
        var exited = false
        reading: while output.count <= Self.maximumLength {
            var descriptor = pollfd(fd: pipeEnds[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 100)
            if ready > 0 {
                let count = read(pipeEnds[0], &chunk, chunk.count)
                if count < 0, errno == EINTR { continue }
                if count <= 0 { break reading }
                output.append(contentsOf: chunk[0..<count])
                continue
            }
            if ready < 0, errno != EINTR { break reading }
            if exited { break reading }  // exited, and a poll later nothing is waiting
            if waitpid(pid, &status, WNOHANG) == pid { exited = true; continue }
            if ContinuousClock.now > deadline {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0, errno == EINTR {}
                throw LoginFailure("\(source) gave no token within \(Self.commandTimeout)")
            }
        }
        if !exited {
            if output.count > Self.maximumLength { kill(pid, SIGKILL) }
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        }
        let exit = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        guard exit == 0 || output.count > Self.maximumLength else { throw LoginFailure("\(source) exited with status \(exit)") }
        return output
    }
}

/// The registry a command talks to: `--url`, else `PIERONE_URL`, else `url:` in
/// `~/.config/pierone.yaml` (as the original CLI). A URL without a scheme is `https://`.
package enum RegistryLocation {
    package static func configPath(environment: [String: String]) -> String {
        let base = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (Self.home(environment) + "/.config")
        return base + "/pierone.yaml"
    }

    static func home(_ environment: [String: String]) -> String {
        environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
    }

    package static func resolve(_ url: String?, environment: [String: String]) throws -> String {
        var chosen = url ?? environment["PIERONE_URL"].flatMap { $0.isEmpty ? nil : $0 }
        if chosen == nil, let text = try? String(contentsOfFile: Self.configPath(environment: environment), encoding: .utf8) {
            for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("url:") {
                var value = line.dropFirst(4).trimmingCharacters(in: .whitespaces)
                if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                    value = String(value.dropFirst().dropLast())
                }
                if !value.isEmpty { chosen = value }
            }
        }
        guard var chosen else {
            throw LoginFailure("no registry given: use --url, PIERONE_URL, or url: in \(Self.configPath(environment: environment))")
        }
        if !chosen.contains("://") { chosen = "https://" + chosen }
        while chosen.hasSuffix("/") { chosen.removeLast() }
        guard let parsed = URL(string: chosen), let scheme = parsed.scheme, ["http", "https"].contains(scheme),
            let host = parsed.host, !host.isEmpty
        else { throw LoginFailure("\(chosen) is not an http(s) URL of a registry") }
        return chosen
    }

    /// The host (and port) Docker and podman key their credentials by: `pierone.example.org`,
    /// `localhost:8080`.
    package static func registryHost(_ url: String) -> String {
        guard let parsed = URL(string: url), let host = parsed.host else { return url }
        let name = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        switch (parsed.scheme, parsed.port) {
        case (_, nil), ("https", 443), ("http", 80): return name
        case (_, let port?): return "\(name):\(port)"
        }
    }

    /// Records `url` as the default in `~/.config/pierone.yaml` when no default is there yet.
    package static func rememberIfUnset(_ url: String, environment: [String: String]) {
        let path = Self.configPath(environment: environment)
        guard !FileManager.default.fileExists(atPath: path) else { return }
        try? AuthFile.writeAtomically(Data("url: \(url)\n".utf8), to: path, mode: 0o644)
    }
}

/// Edits a Docker `config.json` or podman `auth.json`, keeping everything else in it.
package enum AuthFile {
    /// What a login writes for one registry host.
    package enum Entry: Equatable, Sendable {
        /// `credHelpers[host] = name`: the client runs `docker-credential-<name>` for each pull.
        case credentialHelper(String)
        /// `auths[host].auth = base64(user:secret)`.
        case stored(user: String, secret: String)
    }

    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    package static func dockerConfigPath(environment: [String: String]) -> String {
        if let directory = environment["DOCKER_CONFIG"], !directory.isEmpty { return directory + "/config.json" }
        return RegistryLocation.home(environment) + "/.docker/config.json"
    }

    /// `REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`.
    package static func podmanAuthPath(environment: [String: String]) throws -> String {
        if let file = environment["REGISTRY_AUTH_FILE"], !file.isEmpty { return file }
        if let directory = environment["XDG_RUNTIME_DIR"], !directory.isEmpty { return directory + "/containers/auth.json" }
        throw LoginFailure("neither REGISTRY_AUTH_FILE nor XDG_RUNTIME_DIR is set: cannot tell where podman keeps its credentials")
    }

    /// `contents` with `entry` for `host`. A helper entry drops a token stored for the host (the
    /// helper would shadow it anyway); a stored token drops a helper entry (which would win).
    package static func updated(_ contents: Data?, host: String, entry: Entry) throws -> Data {
        var root: [String: Any] = [:]
        if let contents, !contents.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            guard let object = try? JSONSerialization.jsonObject(with: contents) as? [String: Any] else {
                throw LoginFailure("the file is not a JSON object; fix or remove it first (nothing was changed)")
            }
            root = object
        }
        func section(_ key: String) throws -> [String: Any] {
            guard let value = root[key] else { return [:] }
            guard let object = value as? [String: Any] else {
                throw LoginFailure("\"\(key)\" in the file is not a JSON object; fix it first (nothing was changed)")
            }
            return object
        }
        if case .stored = entry, let store = root["credsStore"] as? String, !store.isEmpty {
            throw LoginFailure(
                "credsStore is \"\(store)\": Docker would ask docker-credential-\(store) and never read a stored token; log in without --store-token (nothing was changed)"
            )
        }
        var helpers = try section("credHelpers")
        var auths = try section("auths")
        switch entry {
        case .credentialHelper(let name):
            helpers[host] = name
            auths[host] = nil
        case .stored(let user, let secret):
            var record = auths[host] as? [String: Any] ?? [:]
            record["auth"] = Data("\(user):\(secret)".utf8).base64EncodedString()
            record["identitytoken"] = nil
            auths[host] = record
            helpers[host] = nil
        }
        root["credHelpers"] = helpers.isEmpty ? nil : helpers
        root["auths"] = auths
        return try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            + Data("\n".utf8)
    }

    /// Writes `entry` for `host` into the file at `path` (created with its directory if missing).
    package static func update(path: String, host: String, entry: Entry) throws {
        let existing = FileManager.default.contents(atPath: path)
        if existing == nil, FileManager.default.fileExists(atPath: path) {
            throw LoginFailure("cannot read \(path) (nothing was changed)")
        }
        let contents: Data
        do {
            contents = try Self.updated(existing, host: host, entry: entry)
        } catch let failure as LoginFailure {
            throw LoginFailure("\(path): \(failure.description)")
        }
        try Self.writeAtomically(contents, to: path, mode: 0o600)
    }

    /// Writes `data` next to `path` with `mode` and renames it over `path`: a reader sees the old
    /// file or the new one, never half of one. A symbolic link is followed (its target replaced).
    package static func writeAtomically(_ data: Data, to path: String, mode: mode_t) throws {
        var target = path
        for _ in 0..<40 {  // a chain of links (dotfile managers), to the file at its end
            guard let destination = try? FileManager.default.destinationOfSymbolicLink(atPath: target) else { break }
            target = destination.hasPrefix("/") ? destination : (target as NSString).deletingLastPathComponent + "/" + destination
        }
        let directory = (target as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw LoginFailure("cannot create \(directory): \(error.localizedDescription)")
        }
        let temporary = directory + "/.\((target as NSString).lastPathComponent).\(UUID().uuidString.prefix(8)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw LoginFailure("cannot write in \(directory): \(String(cString: strerror(errno)))") }
        var written = 0
        let failed: Bool = data.withUnsafeBytes { bytes in
            while written < bytes.count {
                let step = write(descriptor, bytes.baseAddress! + written, bytes.count - written)
                if step <= 0 { return true }
                written += step
            }
            return fchmod(descriptor, mode) != 0 || fsync(descriptor) != 0
        }
        close(descriptor)
        guard !failed, rename(temporary, target) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw LoginFailure("cannot write \(target): \(reason) (nothing was changed)")
        }
    }
}

/// Checks credentials against the registry's `/v2/` before anything is written.
package struct RegistryCheck: Sendable {
    let url: String
    let http: HTTPClient

    package init(url: String, http: HTTPClient = .shared) {
        self.url = url
        self.http = http
    }

    package func verify(user: String, secret: String) async throws {
        var request = HTTPClientRequest(url: self.url + "/v2/")
        request.headers.add(name: "Authorization", value: "Basic " + Data("\(user):\(secret)".utf8).base64EncodedString())
        let response: HTTPClientResponse
        do {
            response = try await self.http.execute(request, timeout: .seconds(30))
        } catch {
            throw LoginFailure("cannot reach \(self.url): \(error)")
        }
        let body = try? await response.body.collect(upTo: 1 << 20)
        switch response.status.code {
        case 200..<300:
            return
        case 401:
            let what = user == "oauth2" ? "the token" : "the instance identity document"
            throw LoginFailure("\(self.url) refused \(what) (401): it is expired, revoked or not for this registry; nothing was changed")
        case 403:
            throw LoginFailure("\(self.url) refused these credentials (403): \(Self.message(body) ?? "denied"); nothing was changed")
        default:
            throw LoginFailure("\(self.url)/v2/ answered \(response.status.code): \(Self.message(body) ?? "not a registry?"); nothing was changed")
        }
    }

    /// The first OCI error message of a body.
    static func message(_ body: ByteBuffer?) -> String? {
        struct Envelope: Decodable {
            struct Entry: Decodable { let message: String }
            let errors: [Entry]
        }
        guard let body else { return nil }
        return (try? JSONDecoder().decode(Envelope.self, from: Data(buffer: body)))?.errors.first?.message
    }
}

/// The EC2 instance identity document (PKCS#7) from the instance metadata service, IMDSv2.
package struct InstanceMetadata: Sendable {
    /// `--imds-url`, `PIERONE_IMDS_URL`; default `http://169.254.169.254`.
    let endpoint: String
    let http: HTTPClient

    package init(endpoint: String, http: HTTPClient = .shared) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.http = http
    }

    package func identityDocument() async throws -> String {
        var tokenRequest = HTTPClientRequest(url: self.endpoint + "/latest/api/token")
        tokenRequest.method = .PUT
        tokenRequest.headers.add(name: "X-aws-ec2-metadata-token-ttl-seconds", value: "300")
        let token = try await self.text(tokenRequest, what: "a session token")
        var documentRequest = HTTPClientRequest(url: self.endpoint + "/latest/dynamic/instance-identity/pkcs7")
        documentRequest.headers.add(name: "X-aws-ec2-metadata-token", value: token)
        let document = try await self.text(documentRequest, what: "the instance identity document").filter { !$0.isWhitespace }
        guard !document.isEmpty, Data(base64Encoded: document) != nil else {
            throw LoginFailure("the instance metadata service at \(self.endpoint) gave no base64 PKCS#7 document")
        }
        return document
    }

    private func text(_ request: HTTPClientRequest, what: String) async throws -> String {
        let response: HTTPClientResponse
        do {
            response = try await self.http.execute(request, timeout: .seconds(5))
        } catch {
            throw LoginFailure("cannot reach the instance metadata service at \(self.endpoint) (not on EC2? --imds-url): \(error)")
        }
        let body = try await response.body.collect(upTo: 64 * 1024)
        guard response.status == .ok else {
            throw LoginFailure("the instance metadata service at \(self.endpoint) answered \(response.status.code) for \(what)")
        }
        return String(buffer: body).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// `docker-credential-pierone get|store|erase|list` (the docker-credential-helpers protocol:
/// the server URL or a JSON object on standard input, JSON on standard output). Tokens are
/// fetched fresh for every `get`, never stored: `store` and `erase` accept and keep nothing.
package enum CredentialHelper {
    /// What the protocol's clients compare standard output with, exactly, to fall back to no
    /// credentials (an anonymous pull) instead of failing.
    package static let notFound = "credentials not found in native keychain"

    package struct Credentials: Codable, Equatable, Sendable {
        package var ServerURL: String?
        package var Username: String
        package var Secret: String

        package init(ServerURL: String?, Username: String, Secret: String) {
            self.ServerURL = ServerURL
            self.Username = Username
            self.Secret = Secret
        }
    }

    /// The answer to `action` with `input` on standard input; throws a failure the helper prints
    /// on standard output and exits 1 with (as the protocol asks).
    package static func answer(_ action: String, input: Data, tokens: TokenSources) throws -> Data {
        switch action {
        case "get":
            let server = String(decoding: input, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !server.isEmpty else { throw LoginFailure("no server URL on standard input") }
            guard let token = try tokens.resolve() else { throw LoginFailure(Self.notFound) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return try encoder.encode(Credentials(ServerURL: server, Username: "oauth2", Secret: token))
        case "store", "erase":
            return Data()
        case "list":
            return Data("{}".utf8)
        case "version":
            return Data("docker-credential-pierone (Pier One in Swift)\n".utf8)
        default:
            throw LoginFailure("unknown credential helper action \(action) (get, store, erase, list)")
        }
    }
}

/// What `pierone login` does: find the credentials, check them against the registry's `/v2/`,
/// and only then write the Docker (or podman) file.
package struct RegistryLogin: Sendable {
    package var url: String?
    package var tokens: TokenSources
    package var storeToken = false
    package var podman = false
    package var instanceIdentity = false
    package var imdsURL: String?
    package var environment: [String: String]

    package init(url: String?, tokens: TokenSources, environment: [String: String]) {
        self.url = url
        self.tokens = tokens
        self.environment = environment
    }

    package struct Outcome: Sendable {
        package var host: String
        package var path: String
        package var entry: AuthFile.Entry
    }

    package func perform(http: HTTPClient = .shared) async throws -> Outcome {
        let registry = try RegistryLocation.resolve(self.url, environment: self.environment)
        let host = RegistryLocation.registryHost(registry)
        let path = self.podman ? try AuthFile.podmanAuthPath(environment: self.environment) : AuthFile.dockerConfigPath(environment: self.environment)
        let entry: AuthFile.Entry
        if self.instanceIdentity {
            let endpoint = self.imdsURL ?? self.environment["PIERONE_IMDS_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://169.254.169.254"
            let document = try await InstanceMetadata(endpoint: endpoint, http: http).identityDocument()
            try await RegistryCheck(url: registry, http: http).verify(user: "instance-identity-document", secret: document)
            entry = .stored(user: "instance-identity-document", secret: document)
        } else {
            guard let token = try self.tokens.resolve() else {
                throw LoginFailure("no token: give --token, PIERONE_TOKEN, PIERONE_TOKEN_FILE or PIERONE_TOKEN_COMMAND (see docs/cli.md)")
            }
            try await RegistryCheck(url: registry, http: http).verify(user: "oauth2", secret: token)
            entry = self.storeToken || self.podman ? .stored(user: "oauth2", secret: token) : .credentialHelper("pierone")
        }
        try AuthFile.update(path: path, host: host, entry: entry)
        if self.url != nil { RegistryLocation.rememberIfUnset(registry, environment: self.environment) }
        return Outcome(host: host, path: path, entry: entry)
    }
}
