import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The system calls the filesystem driver makes in one job on the I/O threads (a session's small
/// steps: one hand-off for all of them instead of one per step).
extension FilesystemDriver {
    /// Runs `body` (blocking system calls) on NIO's I/O thread pool, as `FileSystem` does for
    /// each of its calls: a sequence of small steps pays one hand-off instead of one per step.
    static func onIOThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    /// A system call on a path that failed.
    struct CallError: Error, CustomStringConvertible {
        var call: String
        var path: String
        var errno: Int32
        var description: String { "\(self.call) \(self.path): \(String(cString: strerror(self.errno)))" }
    }

    /// Throws the call's errno when `result` is negative.
    static func check(_ call: String, _ path: String, _ result: Int32) throws {
        if result < 0 { throw CallError(call: call, path: path, errno: errno) }
    }

    /// The size of the file at `path`, nil when nothing is there.
    static func size(_ path: String) throws -> Int64? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw CallError(call: "open", path: path, errno: errno)
        }
        defer { close(descriptor) }
        let end = lseek(descriptor, 0, SEEK_END)
        guard end >= 0 else { throw CallError(call: "lseek", path: path, errno: errno) }
        return Int64(end)
    }

    /// Creates `path` (which must not exist) holding `bytes`.
    static func writeNewFile(_ path: String, _ bytes: [UInt8]) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        try Self.check("open", path, descriptor)
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if result < 0 && errno == EINTR { continue }
            try Self.check("write", path, Int32(clamping: result))
            written += result
        }
    }

    /// The bytes of a small file, at most `limit` of them.
    static func readSmallFile(_ path: String, limit: Int) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        try Self.check("open", path, descriptor)
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: limit)
        var count = 0
        while count < limit {
            let result = bytes[count...].withUnsafeMutableBytes { systemRead(descriptor, $0.baseAddress, $0.count) }
            if result < 0 && errno == EINTR { continue }
            try Self.check("read", path, Int32(clamping: result))
            if result == 0 { break }
            count += result
        }
        return Array(bytes[..<count])
    }

    private static func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.read(descriptor, buffer, count)
        #else
        Darwin.read(descriptor, buffer, count)
        #endif
    }

    /// `mkdir -p` of `components` under `root` (which exists).
    static func makeDirectories(_ components: [String], below root: String) throws {
        var current = root
        for component in components {
            let parent = current
            current += "/" + component
            if mkdir(current, 0o755) == 0 {
                // The new entry is durable only once its parent directory is.
                let descriptor = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                try Self.check("open", parent, descriptor)
                defer { close(descriptor) }
                try Self.check("fsync", parent, fsync(descriptor))
            } else if errno != EEXIST {
                throw CallError(call: "mkdir", path: current, errno: errno)
            }
        }
    }
}
