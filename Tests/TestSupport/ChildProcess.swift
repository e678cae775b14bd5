import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn`, instead of Foundation's `Process`, whose `run()`
/// on Linux (Swift 6.3.1) over-reads a `dirent` while listing `/proc/self/fd` and crashes the test
/// process now and then (swiftlang/swift-corelibs-foundation#5472; seen in CI here). A thread per
/// child waits for it, so its status is known without polling and a zombie never lingers.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let state = Mutex<(status: Int32?, waiters: [CheckedContinuation<Int32, Never>])>((nil, []))
    private let exited = DispatchSemaphore(value: 0)

    public struct SpawnError: Error, CustomStringConvertible {
        public var program: String
        public var code: Int32
        public var description: String { "cannot start \(self.program): \(String(cString: strerror(self.code)))" }
    }

    /// Starts `arguments[0]` (looked up on `PATH` unless it contains a slash) with `environment`,
    /// standard output on `output` and standard error on `error` (default: with the output; nil
    /// output: /dev/null), standard input from /dev/null, no other descriptor of the test process,
    /// in `directory` when given.
    public init(
        _ arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment,
        directory: String? = nil, output: Int32? = nil, error: Int32? = nil
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output {
            posix_spawn_file_actions_adddup2(&actions, output, 1)
            posix_spawn_file_actions_adddup2(&actions, error ?? output, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        // glibc 2.34+ / 2.29+, but not exported to Swift's Glibc module: looked up at run time.
        _ = Self.closeFrom?(&actions, 3)
        if let directory {
            guard let changeDirectory = Self.changeDirectory else { throw SpawnError(program: "chdir", code: ENOSYS) }
            _ = changeDirectory(&actions, directory)
        }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid = pid_t()
        let code = argv.withUnsafeBufferPointer { argvBuffer in
            envp.withUnsafeBufferPointer { envpBuffer in
                posix_spawnp(
                    &pid, arguments[0], &actions, nil,
                    UnsafeMutablePointer(mutating: argvBuffer.baseAddress!), UnsafeMutablePointer(mutating: envpBuffer.baseAddress!)
                )
            }
        }
        guard code == 0 else { throw SpawnError(program: arguments[0], code: code) }
        self.pid = pid
        let child = pid
        Thread.detachNewThread { [self] in
            var status: Int32 = 0
            while waitpid(child, &status, 0) < 0, errno == EINTR {}
            // Exit code, or 128 + the signal that ended it (as shells report it).
            let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            let waiters = self.state.withLock { state in
                state.status = code
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: code) }
            self.exited.signal()
        }
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private typealias ChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    private static let closeFrom: CloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFrom.self) }
    private static let changeDirectory: ChangeDirectory? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np")
        .map { unsafeBitCast($0, to: ChangeDirectory.self) }

    public var isRunning: Bool { self.state.withLock { $0.status == nil } }

    public func signal(_ signal: Int32) {
        if self.isRunning { kill(self.pid, signal) }
    }

    /// The exit status, once the child has exited.
    public func status() async -> Int32 {
        await withCheckedContinuation { continuation in
            let status = self.state.withLock { state in
                if state.status == nil { state.waiters.append(continuation) }
                return state.status
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// Blocks until the child exits (for clean-up at exit, outside Swift concurrency).
    public func waitUntilExit() {
        if self.isRunning {
            self.exited.wait()
            self.exited.signal()
        }
    }
}
