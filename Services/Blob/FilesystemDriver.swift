import CFileReads
import Contracts
import NIOCore
import _NIOFileSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Blobs and uploads as files under one root directory.
///
/// Layout:
/// ```
/// <root>/uploads/<uuid>/data        bytes received so far
/// <root>/uploads/<uuid>/sealed      the same bytes once a commit froze them (no writer opens this)
/// <root>/uploads/<uuid>/info.json   UploadInfo; also the session's lock (flock(2))
/// <root>/uploads/<uuid>/hashstate   SavedHashState: the running digest after the stored bytes
/// <root>/blobs/<algorithm>/<first two hex>/<hex>   committed blobs (location = path under root)
/// ```
/// Uploads and blobs share one filesystem so that a commit is a `rename(2)`, never a copy; the
/// file and then its directory are `fsync`ed after the rename, before the commit answers.
///
/// Every append and the seal hold an exclusive `flock(2)` on the session's `info.json`, which
/// other processes on the host and NFSv4 clients honour too (Linux maps flock to byte-range locks
/// there). The seal renames `data` to `sealed` under that lock: a writer that arrives later finds
/// no `data` to open, and no writer is inside while the rename happens, so no byte can reach a
/// file that a commit verified and placed. The kernel drops the lock of a process that dies.
struct FilesystemDriver: StorageDriver {
    let root: FilePath
    private let fileSystem = FileSystem.shared

    /// Bytes buffered before each write system call.
    static let writeBufferSize = ByteCount.mebibytes(1)
    /// Size of the chunks a blob read yields (one more is read ahead), and of upload re-reads.
    static let readChunkSize = ByteCount.mebibytes(1)
    /// Size of the first chunk when a blob read finds its first page out of the page cache; each
    /// next chunk is twice the last, up to `readChunkSize`. The blob then starts going out after
    /// one small disk read, and the kernel's read-ahead fetches the rest while the first chunks
    /// are sent (docs/performance.md, "Seventh pass").
    static let firstReadChunkSize = ByteCount.kibibytes(64)

    init(root: FilePath) {
        self.root = root
    }

    /// Creates the directory layout; fails with the path when it cannot be written.
    func prepare() async throws {
        for directory in ["uploads", "blobs"] {
            try await self.fileSystem.createDirectory(
                at: self.root.appending(directory), withIntermediateDirectories: true, permissions: nil
            )
        }
    }

    private func uploadDirectory(_ id: UploadID) -> FilePath { self.root.appending("uploads").appending(id.value) }
    private func dataPath(_ id: UploadID) -> FilePath { self.uploadDirectory(id).appending("data") }
    private func sealedPath(_ id: UploadID) -> FilePath { self.uploadDirectory(id).appending("sealed") }

    /// Runs `body` holding the session's exclusive lock; 409 when another request holds it,
    /// `BLOB_UPLOAD_UNKNOWN` when there is no session. Never waits: a stalled writer makes the
    /// others fail fast instead of queueing behind it.
    private func exclusively<T>(_ id: UploadID, _ body: () async throws -> T) async throws -> T {
        // Read-write: NFS implements flock as a POSIX write lock, which needs a descriptor open for
        // writing. (POSIX locks are per process, so requests of one process are kept apart by
        // `UploadClaims` as well.)
        let descriptor = open(self.uploadDirectory(id).appending("info.json").string, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw RegistryError(.blobUploadUnknown, "upload \(id) does not exist")
        }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let error = errno
            if error == EWOULDBLOCK || error == EAGAIN { throw RegistryError.uploadBusy(id) }
            throw LockError(errno: error)
        }
        return try await body()
    }

    private func size(at path: FilePath) async throws -> Int64? {
        try await self.fileSystem.info(forFileAt: path, infoAboutSymbolicLink: false)?.size
    }

    func createUpload(_ id: UploadID, info: UploadInfo) async throws {
        let directory = self.uploadDirectory(id).string
        let data = self.dataPath(id).string
        let json = try JSONEncoder().encode(info)
        // `info.json` is whole before `data` exists: a session counts (`upload`) only from then on.
        try await Self.onIOThread {
            try Self.check("mkdir", directory, mkdir(directory, 0o755))
            do {
                try Self.writeNewFile(directory + "/info.json", Array(json))
                try Self.writeNewFile(data, [])
            } catch {
                // A directory without `data` is no session (`upload` skips it): nothing would expire it.
                _ = unlink(directory + "/info.json")
                _ = rmdir(directory)
                throw error
            }
        }
    }

    func upload(_ id: UploadID) async throws -> (info: UploadInfo, size: Int64)? {
        let directory = self.uploadDirectory(id).string
        let found: (json: [UInt8], size: Int64)? = try await Self.onIOThread {
            guard let size = try Self.size(directory + "/data") ?? Self.size(directory + "/sealed") else { return nil }
            do {
                return (try Self.readSmallFile(directory + "/info.json", limit: 64 << 10), size)
            } catch let error as CallError where error.errno == ENOENT {
                // Committed or removed meanwhile (by another request or replica).
                return nil
            }
        }
        guard let found else { return nil }
        return (try JSONDecoder().decode(UploadInfo.self, from: Data(found.json)), found.size)
    }

    func appendUpload<Body: AsyncSequence & Sendable>(
        _ id: UploadID, at offset: Int64, body: Body, observe: (ByteBuffer) -> Void,
        digestState: (Int64) -> SavedHashState?
    ) async throws -> Int64 where Body.Element == ByteBuffer {
        try await self.exclusively(id) {
            let size = try await self.writeChunk(id, at: offset, body: body, observe: observe)
            if let state = digestState(size) {
                try await self.saveHashState(id, state)
            }
            return size
        }
    }

    func sealUpload(_ id: UploadID) async throws -> (size: Int64, digest: SavedHashState?) {
        try await self.exclusively(id) { try await self.seal(id) }
    }

    func appendAndSeal<Body: AsyncSequence & Sendable>(
        _ id: UploadID, at offset: Int64, body: Body, observe: (ByteBuffer) -> Void
    ) async throws -> (size: Int64, digest: SavedHashState?) where Body.Element == ByteBuffer {
        try await self.exclusively(id) {
            _ = try await self.writeChunk(id, at: offset, body: body, observe: observe)
            return try await self.seal(id)
        }
    }

    /// Appends `body` at `offset`; the caller holds the session's lock.
    private func writeChunk<Body: AsyncSequence & Sendable>(
        _ id: UploadID, at offset: Int64, body: Body, observe: (ByteBuffer) -> Void
    ) async throws -> Int64 where Body.Element == ByteBuffer {
        guard let current = try await self.size(at: self.dataPath(id)) else {
            throw RegistryError.uploadBusy(id, "upload \(id) is being committed")
        }
        guard current == offset else {
            throw RegistryError.rangeNotSatisfiable("chunk starts at \(offset) but the upload has \(current) bytes", offset: current)
        }
        let handle = try await self.fileSystem.openFile(
            forWritingAt: self.dataPath(id), options: .modifyFile(createIfNecessary: false)
        )
        do {
            var writer = handle.bufferedWriter(startingAtAbsoluteOffset: offset, capacity: Self.writeBufferSize)
            var size = offset
            for try await chunk in body {
                observe(chunk)
                size += try await writer.write(contentsOf: chunk)
            }
            try await writer.flush()
            try await handle.close()
            return size
        } catch {
            try? await handle.close()
            throw error
        }
    }

    /// Renames `data` to `sealed` and reads the saved digest state; the caller holds the lock.
    private func seal(_ id: UploadID) async throws -> (size: Int64, digest: SavedHashState?) {
        let directory = self.uploadDirectory(id).string
        let found: (size: Int64, state: [UInt8]?)? = try await Self.onIOThread {
            guard let size = try Self.size(directory + "/data") else { return nil }
            try Self.check("rename", directory + "/data", rename(directory + "/data", directory + "/sealed"))
            return (size, try? Self.readSmallFile(directory + "/hashstate", limit: 64 << 10))
        }
        guard let found else { throw RegistryError.uploadBusy(id, "upload \(id) is already being committed") }
        return (found.size, found.state.flatMap { try? JSONDecoder().decode(SavedHashState.self, from: Data($0)) })
    }

    func readUpload(_ id: UploadID, into sink: (ByteBuffer) async throws -> Void) async throws {
        try await self.fileSystem.withFileHandle(forReadingAt: self.sealedPath(id)) { handle in
            try await Self.readAhead(handle, 0..<(try await handle.info().size), into: sink)
        }
    }

    func commitUpload(_ id: UploadID, as digest: Digest) async throws -> String {
        let sealed = self.sealedPath(id).string
        // Each upload's bytes get a path of their own (the digest's path and the upload id), never
        // one another upload wrote: the garbage collector deletes exactly the file of the row it
        // removed, so a new upload of the same digest at the same moment cannot lose its bytes.
        // Metadata records the first location of a digest; later copies are discarded.
        let location = Self.location(of: digest, upload: id)
        let destination = self.root.pushing(location).string
        let directory = self.root.pushing(location).removingLastComponent().string
        let root = self.root.string
        // blobs/<algorithm>/<first two hex>
        let fanOut = location.removingLastComponent().components.map(\.string)
        let session = self.uploadDirectory(id).string
        // One trip to the I/O threads for the whole commit (a trip per step before: on a busy host
        // the hand-offs cost more than the steps).
        let (emptied, failure) = try await Self.onIOThread { () throws -> (Bool, CallError?) in
            let descriptor = open(sealed, O_RDONLY | O_CLOEXEC)
            try Self.check("open", sealed, descriptor)
            defer { close(descriptor) }
            // The file's time becomes the commit's (a rename keeps the last write's): the orphan
            // scan leaves blobs younger than an hour alone, and this one is about to be recorded.
            _ = futimens(descriptor, nil)
            // Renamed before the file's fsync: nothing names the new path until this call returns
            // (metadata records it afterwards; a crash before leaves an orphan for the scan), and
            // on a journalling file system the file's fsync then commits the rename with the data,
            // so the directory's fsync below finds little left to do: one journal commit per blob
            // instead of two. The collector removes fan-out directories it empties: if it removed
            // this one, it is made again.
            if rename(sealed, destination) != 0 {
                guard errno == ENOENT else { throw CallError(call: "rename", path: sealed, errno: errno) }
                try Self.makeDirectories(fanOut, below: root)
                try Self.check("rename", sealed, rename(sealed, destination))
            }
            var failed: CallError?
            if fsync(descriptor) != 0 { failed = CallError(call: "fsync", path: destination, errno: errno) }
            let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if directoryDescriptor < 0 {
                failed = failed ?? CallError(call: "open", path: directory, errno: errno)
            } else {
                if fsync(directoryDescriptor) != 0 { failed = failed ?? CallError(call: "fsync", path: directory, errno: errno) }
                close(directoryDescriptor)
            }
            // The session's own files (also when an fsync failed: the bytes have moved, and a session
            // directory without them would never expire); anything else is left to the removal below.
            // The moved bytes of a failed commit are an orphan no record names, for the orphan scan.
            for name in ["info.json", "hashstate", "hashstate.tmp", "data"] { _ = unlink(session + "/" + name) }
            return (rmdir(session) == 0 || errno == ENOENT, failed)
        }
        if let failure {
            // What else the session directory holds goes too; the fsync's failure is the answer.
            if !emptied { try? await self.abortUpload(id, evenIfSealed: true) }
            throw failure
        }
        if !emptied { try await self.abortUpload(id, evenIfSealed: true) }
        return location.string
    }

    /// Saves the running digest of an upload next to its bytes: its state after `state.offset` bytes.
    func saveHashState(_ id: UploadID, _ state: SavedHashState) async throws {
        let directory = self.uploadDirectory(id)
        let temporary = directory.appending("hashstate.tmp")
        let json = try JSONEncoder().encode(state)
        try await self.fileSystem.withFileHandle(forWritingAt: temporary, options: .newFile(replaceExisting: true)) { handle in
            _ = try await handle.write(contentsOf: Array(json), toAbsoluteOffset: 0)
        }
        // rename(2) replaces atomically: a reader sees the old state or the new one, never half of one.
        guard rename(temporary.string, directory.appending("hashstate").string) == 0 else {
            throw RenameError(errno: errno)
        }
    }

    func loadHashState(_ id: UploadID) async throws -> SavedHashState? {
        let path = self.uploadDirectory(id).appending("hashstate")
        guard try await self.fileSystem.info(forFileAt: path, infoAboutSymbolicLink: false) != nil else { return nil }
        let json = try await self.fileSystem.withFileHandle(forReadingAt: path) { handle in
            try await handle.readToEnd(maximumSizeAllowed: .kibibytes(64))
        }
        return try? JSONDecoder().decode(SavedHashState.self, from: Data(json.readableBytesView))
    }

    func abortUpload(_ id: UploadID, evenIfSealed: Bool) async throws {
        if !evenIfSealed, try await self.size(at: self.dataPath(id)) == nil, try await self.size(at: self.sealedPath(id)) != nil {
            throw RegistryError.uploadBusy(id, "upload \(id) is being committed")
        }
        // Safe against a commit on another replica: its rename of `sealed` either happened (the
        // blob is placed) or fails for want of the file (nothing is recorded).
        try await self.fileSystem.removeItem(at: self.uploadDirectory(id), strategy: .platformDefault, recursively: true)
    }

    func isReachable() async -> Bool {
        (try? await self.fileSystem.info(forFileAt: self.root.appending("uploads"), infoAboutSymbolicLink: false)) != nil
    }

    func isOwnLocation(_ location: String) -> Bool {
        // Exactly blobs/<algorithm>/<first two hex>/<hex>[.<upload id>] of a valid digest: no `..`,
        // no absolute path. (Blobs stored before uploads had paths of their own have no suffix.)
        let parts = location.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "blobs" else { return false }
        let name = parts[3].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let digest = Digest("\(parts[1]):\(name[0])") else { return false }
        if name.count == 2 {
            guard let upload = UploadID(name[1]) else { return false }
            return Self.location(of: digest, upload: upload).string == location
        }
        return Self.location(of: digest).string == location
    }

    func listUploads() async throws -> [(id: UploadID, startedAt: Double)] {
        var result: [(id: UploadID, startedAt: Double)] = []
        try await self.fileSystem.withDirectoryHandle(atPath: self.root.appending("uploads")) { directory in
            for try await entry in directory.listContents() {
                guard let id = UploadID(entry.name.string), let upload = try await self.upload(id) else { continue }
                result.append((id, upload.info.startedAt))
            }
        }
        return result
    }

    func read(
        location: String, range: ClosedRange<Int64>?, into sink: (ByteBuffer) async throws -> Void
    ) async throws {
        try await self.fileSystem.withFileHandle(forReadingAt: self.root.appending(location)) { handle in
            let bounds = if let range {
                range.lowerBound..<(range.upperBound + 1)
            } else {
                0..<(try await handle.info().size)
            }
            try await Self.readAhead(handle, bounds, into: sink)
        }
    }

    /// Reads `bounds` in `readChunkSize` chunks, reading the next chunk while `sink` handles the
    /// current one, so that at most two chunks are in memory per reader.
    ///
    /// Measured against `readChunks` (256 KiB chunks, eight read ahead by NIO's producer): a fifth
    /// of the read calls and less CPU per pulled byte, with the same 2 MiB per reader
    /// (docs/performance.md, "Pulls: what was found and changed").
    ///
    /// The first chunk is read only if its first page is in the page cache
    /// (`pierone_pread_if_cached`). When it is not, the blob is cold: the chunks grow from
    /// `firstReadChunkSize`, so that its first bytes do not wait for a whole chunk's disk read.
    /// Where the kernel or file system cannot tell, the chunks are whole ones, as before.
    static func readAhead(
        _ handle: ReadFileHandle, _ bounds: Range<Int64>, into sink: (ByteBuffer) async throws -> Void
    ) async throws {
        guard bounds.lowerBound < bounds.upperBound else { return }
        let largest = Int64(Self.readChunkSize.bytes)
        var chunkLength = largest
        func read(at offset: Int64) -> Task<ByteBuffer, any Error> {
            let length = ByteCount.bytes(min(chunkLength, bounds.upperBound - offset))
            chunkLength = min(chunkLength * 2, largest)
            return Task { try await handle.readChunk(fromAbsoluteOffset: offset, length: length) }
        }
        var offset = bounds.lowerBound
        var pending: Task<ByteBuffer, any Error>?
        do {
            let wanted = min(largest, bounds.upperBound - offset)
            // Nil: the kernel cannot tell, and the read goes on in whole chunks.
            let cached = try await Self.cachedChunk(handle, at: offset, length: Int(wanted))
            if let cached, cached.readableBytes < wanted { chunkLength = min(Int64(Self.firstReadChunkSize.bytes), largest) }
            offset += Int64(cached?.readableBytes ?? 0)
            if offset < bounds.upperBound { pending = read(at: offset) }
            if let cached, cached.readableBytes > 0 { try await sink(cached) }
            while let reading = pending {
                let chunk = try await reading.value
                pending = nil
                // A file shorter than its record ends the body early; the client sees a short read.
                guard chunk.readableBytes > 0 else { break }
                offset += Int64(chunk.readableBytes)
                if offset < bounds.upperBound { pending = read(at: offset) }
                try await sink(chunk)
            }
        } catch {
            // The handle closes when this returns: no read may still be using it.
            if let pending { _ = try? await pending.value }
            throw error
        }
    }

    /// `length` bytes at `offset` when their first page is in the page cache; empty when it is
    /// not, shorter when the read stopped early, nil when the kernel or file system cannot tell.
    static func cachedChunk(_ handle: ReadFileHandle, at offset: Int64, length: Int) async throws -> ByteBuffer? {
        try await handle.withUnsafeDescriptor { descriptor in
            var buffer = ByteBufferAllocator().buffer(capacity: length)
            let read = buffer.withUnsafeMutableWritableBytes { bytes in
                pierone_pread_if_cached(descriptor.rawValue, bytes.baseAddress, length, offset)
            }
            guard read >= 0 else { return nil }
            buffer.moveWriterIndex(forwardBy: read)
            return buffer
        }
    }

    /// Walks `blobs/<algorithm>/<xx>/` in name order (the names hold no character below `/`, so
    /// that is the order of the locations), skipping directories wholly before `marker`.
    func listBlobs(after marker: String?, limit: Int) async throws -> (blobs: [StoredBlob], next: String?) {
        let manager = FileManager.default
        let base = self.root.appending("blobs").string
        func names(_ path: String) -> [String] { ((try? manager.contentsOfDirectory(atPath: path)) ?? []).sorted() }
        var result: [StoredBlob] = []
        for algorithm in names(base) {
            for fan in names(base + "/" + algorithm) {
                let prefix = "blobs/\(algorithm)/\(fan)/"
                if let marker, prefix < marker, !marker.hasPrefix(prefix) { continue }
                for name in names(base + "/" + algorithm + "/" + fan) {
                    let location = prefix + name
                    if let marker, location <= marker { continue }
                    guard let attributes = try? manager.attributesOfItem(atPath: self.root.appending(location).string),
                          attributes[.type] as? FileAttributeType == .typeRegular
                    else { continue }
                    let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
                    result.append(StoredBlob(
                        location: location, size: Self.size(attributes[.size]),
                        modifiedMillis: Int64(modified * 1000)
                    ))
                    // One more than asked tells whether the listing goes on.
                    if result.count > limit { return (Array(result.prefix(limit)), result[limit - 1].location) }
                }
            }
        }
        return (result, nil)
    }

    private static func size(_ value: Any?) -> Int64 {
        switch value {
        case let value as Int: Int64(value)
        case let value as Int64: value
        case let value as UInt64: Int64(clamping: value)
        default: 0
        }
    }

    func deleteBlob(location: String) async throws {
        let path = self.root.appending(location)
        try await self.fileSystem.removeItem(at: path, strategy: .platformDefault, recursively: false)
        // The fan-out directory goes once empty (rmdir refuses one that is not).
        _ = rmdir(path.removingLastComponent().string)
    }

    struct RenameError: Error {
        var errno: Int32
    }

    /// `flock(2)` failed for another reason than a holder (ENOLCK: an NFS mount without locking).
    struct LockError: Error, CustomStringConvertible {
        var errno: Int32
        var description: String { "cannot lock an upload session (errno \(self.errno)): STORAGE_DIRECTORY must support flock(2)" }
    }

    /// `blobs/<algorithm>/<first two hex>/<hex>`: two hex characters fan out into 256 directories.
    /// Where blobs were stored before each upload had a path of its own (still read).
    static func location(of digest: Digest) -> FilePath {
        FilePath("blobs").appending(digest.algorithm.rawValue).appending(String(digest.hex.prefix(2)))
            .appending(digest.hex)
    }

    /// Where upload `id` places the blob `digest`.
    static func location(of digest: Digest, upload id: UploadID) -> FilePath {
        FilePath("blobs").appending(digest.algorithm.rawValue).appending(String(digest.hex.prefix(2)))
            .appending("\(digest.hex).\(id)")
    }
}
