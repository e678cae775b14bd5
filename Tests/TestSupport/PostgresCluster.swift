import Foundation
import Logging
import PostgresNIO
import Synchronization

/// A throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory, started with
/// `pg_ctl` on a free loopback port with password authentication, stopped when the test process
/// exits. Every test gets a database of its own (`makeDatabase`).
///
/// The server binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/<v>/bin`,
/// or `PG_BIN`); `./scripts/test` installs it. As root, the server runs as the `postgres` user.
public final class PostgresCluster: Sendable {
    public let port: Int
    public let directory: String
    public static let user = "pierone"
    public static let password = "pierone-test-secret"

    private let binaries: String

    /// The cluster shared by a test process, started on first use.
    public static func shared() async throws -> PostgresCluster {
        try await SharedCluster.instance.cluster()
    }

    /// With `tls`, the CA that signed the server certificate (`localhost` only) and the server
    /// requires encryption for TCP connections.
    public var certificateAuthority: String? { self.tls ? self.directory + "/ca.crt" : nil }

    private let tls: Bool

    /// Creates and starts a new cluster (for tests that stop and restart it, or need TLS).
    public static func start(tls: Bool = false) async throws -> PostgresCluster {
        let binaries = try Self.findBinaries()
        let directory = "/tmp/pierone-pg-\(UUID().uuidString.prefix(8))"
        let port = try Self.freePort()
        let passwordFile = directory + ".pw"
        try Data(Self.password.utf8).write(to: URL(fileURLWithPath: passwordFile))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: passwordFile)
        defer { try? FileManager.default.removeItem(atPath: passwordFile) }
        try await Self.run(binaries + "/initdb", [
            "-D", directory, "-U", Self.user, "--pwfile=\(passwordFile)", "--auth=scram-sha-256", "-E", "UTF8",
            "--no-sync",
        ])
        let cluster = PostgresCluster(port: port, directory: directory, binaries: binaries, tls: tls)
        if tls {
            try await cluster.makeCertificates()
        }
        Cleanup.register(directory: directory, binaries: binaries)
        try await cluster.startServer()
        return cluster
    }

    private init(port: Int, directory: String, binaries: String, tls: Bool) {
        self.port = port
        self.directory = directory
        self.binaries = binaries
        self.tls = tls
    }

    /// A private CA and a server certificate for `localhost` (not for 127.0.0.1), made with
    /// openssl as the server's user so the key has the ownership PostgreSQL insists on.
    private func makeCertificates() async throws {
        let ca = self.directory + "/ca"
        let server = self.directory + "/server"
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pierone test CA",
             "-keyout", ca + ".key", "-out", ca + ".crt"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", server + ".key",
             "-out", server + ".csr"],
            ["x509", "-req", "-in", server + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
             "-days", "2", "-out", server + ".crt", "-extfile", self.directory + "/san.cnf"],
        ]
        try Data("subjectAltName=DNS:localhost\n".utf8).write(to: URL(fileURLWithPath: "/tmp/pierone-san-\(self.port).cnf"))
        try await Self.run("/bin/cp", ["/tmp/pierone-san-\(self.port).cnf", self.directory + "/san.cnf"])
        try? FileManager.default.removeItem(atPath: "/tmp/pierone-san-\(self.port).cnf")
        for step in steps {
            try await Self.run("/usr/bin/openssl", step)
        }
        try await Self.run("/bin/chmod", ["0644", ca + ".crt"])
    }

    /// `postgres://…` of a new, empty database on this cluster.
    public func makeDatabase() async throws -> String {
        let name = "test_\(UUID().uuidString.prefix(8).lowercased())"
        let client = PostgresClient(configuration: .init(
            host: "127.0.0.1", port: self.port, username: Self.user, password: Self.password, database: "postgres",
            tls: .disable
        ))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
            group.cancelAll()
        }
        return self.url(database: name)
    }

    public func url(database: String) -> String {
        "postgres://\(Self.user):\(Self.password)@127.0.0.1:\(self.port)/\(database)?sslmode=disable"
    }

    public func stopServer() async throws {
        try await Self.run(self.binaries + "/pg_ctl", ["-D", self.directory, "-m", "fast", "-w", "stop"])
    }

    /// Starts the server as a child process (not through `pg_ctl start`, whose daemonised server
    /// would keep Foundation's termination pipe of `pg_ctl` open) and waits until it accepts
    /// connections.
    public func startServer() async throws {
        let server = [
            self.binaries + "/postgres", "-D", self.directory, "-p", String(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off",
            // Every registry under test keeps its whole pool open, and many run at once.
            "-c", "max_connections=500",
        ] + (self.tls ? [
            "-c", "ssl=on", "-c", "ssl_cert_file=\(self.directory)/server.crt",
            "-c", "ssl_key_file=\(self.directory)/server.key",
        ] : [])
        let log = self.directory + ".log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        defer { try? handle.close() }
        let process = try ChildProcess(
            getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + server : server, output: handle.fileDescriptor
        )
        for _ in 0..<300 {
            if (try? await Self.run(self.binaries + "/pg_isready", ["-q", "-h", "127.0.0.1", "-p", String(self.port)])) != nil {
                return
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        throw SetupError("PostgreSQL did not start on port \(self.port): \(output)")
    }

    // MARK: Plumbing

    private static func findBinaries() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["PG_BIN"] { return explicit }
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        guard let newest = versions.compactMap(Int.init).max() else {
            throw SetupError("PostgreSQL server binaries not found under \(root): install Debian's postgresql (./scripts/test does)")
        }
        return "\(root)/\(newest)/bin"
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    public static func freePort() throws -> Int {
        try Self.freePorts(1)[0]
    }

    /// `count` distinct free ports: all are held open until every one is found, so the system
    /// cannot hand out the same port twice.
    public static func freePorts(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        var ports: [Int] = []
        for _ in 0..<count {
            let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            sockets.append(socket)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0
                }
            }
            guard bound else { throw SetupError("no free port") }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }

    /// Runs a server tool, as the `postgres` user when this process is root (initdb refuses root).
    static func run(_ tool: String, _ arguments: [String]) async throws {
        if getuid() == 0 {
            try await Command.run(["/usr/sbin/runuser", "-u", "postgres", "--", tool] + arguments)
        } else {
            try await Command.run([tool] + arguments)
        }
    }

    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }
}

/// Starts the shared cluster once per test process.
private actor SharedCluster {
    static let instance = SharedCluster()
    private var task: Task<PostgresCluster, any Error>?

    func cluster() async throws -> PostgresCluster {
        if let task { return try await task.value }
        let task = Task { try await PostgresCluster.start() }
        self.task = task
        return try await task.value
    }
}

/// Stops every cluster this process started when it exits, and removes its directory.
private enum Cleanup {
    private static let clusters = Mutex<[(String, String)]>([])

    static func register(directory: String, binaries: String) {
        let first = clusters.withLock { list in
            list.append((directory, binaries))
            return list.count == 1
        }
        if first {
            atexit {
                for (directory, binaries) in Cleanup.clusters.withLock({ $0 }) {
                    let arguments = [binaries + "/pg_ctl", "-D", directory, "-m", "immediate", "stop"]
                    let stop = try? ChildProcess(getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + arguments : arguments)
                    stop?.waitUntilExit()
                    try? FileManager.default.removeItem(atPath: directory)
                    try? FileManager.default.removeItem(atPath: directory + ".log")
                }
            }
        }
    }
}
