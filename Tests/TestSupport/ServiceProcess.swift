import Foundation

/// A `pierone` subcommand running as a child process for split-mode tests, with its output in a
/// log file that failures can quote.
public final class ServiceProcess: @unchecked Sendable {
    private let process: ChildProcess
    public let log: URL
    public let name: String

    /// The `pierone` executable built next to the test bundle.
    public static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("pierone")
    }

    public init(_ name: String, arguments: [String], environment: [String: String], logDirectory: URL) throws {
        self.name = name
        self.log = logDirectory.appendingPathComponent("\(name).log")
        _ = FileManager.default.createFile(atPath: self.log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: self.log)
        defer { try? handle.close() }
        var merged = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("INTERNAL_TLS") }
        merged.merge(environment) { $1 }
        merged["LOG_LEVEL"] = merged["LOG_LEVEL"] ?? "warning"
        self.process = try ChildProcess([Self.executable.path] + arguments, environment: merged, output: handle.fileDescriptor)
    }

    public var isRunning: Bool { self.process.isRunning }

    /// SIGTERM: graceful shutdown.
    public func stop() {
        self.process.signal(SIGTERM)
    }

    /// SIGKILL: a crash.
    public func kill() {
        self.process.signal(SIGKILL)
    }

    public var output: String { (try? String(contentsOf: self.log, encoding: .utf8)) ?? "" }
}
