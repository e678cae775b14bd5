import Foundation

/// Runs an external program (skopeo, python3, openssl, the PostgreSQL tools) without blocking a
/// thread of the Swift concurrency pool, which an in-process registry needs to answer it. The one
/// way the tests start a program that exits; long-running servers are `ServiceProcess` and friends.
public enum Command {
    public struct Failure: Error, CustomStringConvertible {
        public var command: String
        public var status: Int32
        public var output: String
        public var description: String { "\(self.command) exited with \(self.status): \(self.output)" }
    }

    /// Runs `arguments` (looked up on PATH) and returns standard output; throws with the output
    /// of both streams when it exits non-zero.
    @discardableResult
    public static func run(_ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:]) async throws
        -> String
    {
        let outputURL = FileManager.default.temporaryDirectory.appendingPathComponent("cmd-\(UUID()).out")
        let errorURL = FileManager.default.temporaryDirectory.appendingPathComponent("cmd-\(UUID()).err")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outputURL)
            try? FileManager.default.removeItem(at: errorURL)
        }
        let output = try FileHandle(forWritingTo: outputURL)
        let error = try FileHandle(forWritingTo: errorURL)
        defer {
            try? output.close()
            try? error.close()
        }
        let child = try ChildProcess(
            arguments, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, directory: directory?.path,
            output: output.fileDescriptor, error: error.fileDescriptor
        )
        let status = await child.status()
        let stdout = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let stderr = (try? String(contentsOf: errorURL, encoding: .utf8)) ?? ""
            throw Failure(command: arguments.joined(separator: " "), status: status, output: stdout + stderr)
        }
        return stdout
    }
}
