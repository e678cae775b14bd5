import Foundation

/// A `pierone` subcommand running as a child process for split-mode tests, with its output in a
/// log file that failures can quote.
public final class ServiceProcess: @unchecked Sendable {
    private let process = Process()
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
        self.process.executableURL = Self.executable
        self.process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("INTERNAL_TLS") }
        merged.merge(environment) { $1 }
        merged["LOG_LEVEL"] = merged["LOG_LEVEL"] ?? "warning"
        self.process.environment = merged
        self.process.standardOutput = handle
        self.process.standardError = handle
        try self.process.run()
    }

    public var isRunning: Bool { self.process.isRunning }

    /// SIGTERM: graceful shutdown.
    public func stop() {
        if self.process.isRunning { self.process.terminate() }
    }

    /// SIGKILL: a crash.
    public func kill() {
        if self.process.isRunning { Foundation.kill(self.process.processIdentifier, SIGKILL) }
    }

    public var output: String { (try? String(contentsOf: self.log, encoding: .utf8)) ?? "" }
}
