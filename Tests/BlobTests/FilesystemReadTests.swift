import Foundation
import NIOCore
import Testing
import _NIOFileSystem

@testable import Blob

/// The filesystem driver's read loop: chunked, in order, exact at the edges, and a failing
/// consumer stops it with its own error.
@Suite struct FilesystemReadTests {
    static let chunk = Int(FilesystemDriver.readChunkSize.bytes)
    static let first = Int(FilesystemDriver.firstReadChunkSize.bytes)

    /// The chunk sizes a read of `size` bytes yields, from `firstChunk` doubling up to `chunk`,
    /// the last one what is left.
    static func schedule(_ size: Int, firstChunk: Int) -> [Int] {
        var sizes: [Int] = []
        var left = size
        var next = firstChunk
        while left > 0 {
            sizes.append(min(next, left))
            left -= sizes.last!
            next = min(next * 2, Self.chunk)
        }
        return sizes
    }

    #if os(Linux)
    /// Writes the file back and drops it from the page cache (`POSIX_FADV_DONTNEED` drops clean
    /// pages): the next read finds it cold, as a blob not read for a while. Then checks with
    /// `mincore(2)`, which reads nothing, that its first page is gone: a file system that keeps
    /// every page (tmpfs) cannot give a cold file.
    static func evict(_ path: String) throws {
        let descriptor = open(path, O_RDONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        try #require(fsync(descriptor) == 0)
        try #require(posix_fadvise(descriptor, 0, 0, Int32(POSIX_FADV_DONTNEED)) == 0)
        let map = try #require(mmap(nil, 4096, PROT_READ, MAP_SHARED, descriptor, 0))
        try #require(map != UnsafeMutableRawPointer(bitPattern: -1))
        defer { munmap(map, 4096) }
        var resident: UInt8 = 0
        try #require(mincore(map, 4096, &resident) == 0)
        try #require(resident & 1 == 0, "the test directory keeps evicted pages cached; point TMPDIR at a disk")
    }
    #endif

    typealias Read = (String, ClosedRange<Int64>?, (ByteBuffer) async throws -> Void) async throws -> Void

    /// What a read of `location` (or `range` of it) delivered: the bytes, and the size of each chunk.
    static func collect(_ read: Read, _ location: String, _ range: ClosedRange<Int64>? = nil) async throws
        -> (bytes: ByteBuffer, sizes: [Int])
    {
        var collected = ByteBuffer()
        var sizes: [Int] = []
        try await read(location, range) { chunk in
            sizes.append(chunk.readableBytes)
            collected.writeImmutableBuffer(chunk)
        }
        return (collected, sizes)
    }

    /// A file of `size` bytes: `body` gets its location, its bytes, the driver's read and its path.
    static func withFile(size: Int, _ body: (String, ByteBuffer, Read, String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-read-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bytes = StorageFixture.pattern(size)
        try Data(bytes.readableBytesView).write(to: directory.appendingPathComponent("blob"))
        let driver = FilesystemDriver(root: FilePath(directory.path))
        try await body("blob", bytes, { location, range, sink in
            try await driver.read(location: location, range: range, into: sink)
        }, directory.appendingPathComponent("blob").path)
    }

    @Test(arguments: [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + 12_345])
    func wholeFilesArriveInChunksOfTheChunkSize(size: Int) async throws {
        try await Self.withFile(size: size) { location, bytes, read, _ in
            let delivered = try await Self.collect(read, location)
            #expect(delivered.bytes == bytes)
            // Just written, so in the page cache: whole chunks from the first.
            #expect(delivered.sizes == Self.schedule(size, firstChunk: Self.chunk))
        }
    }

    #if os(Linux)
    /// A blob out of the page cache starts with a small chunk, so that its first bytes wait for
    /// one small disk read, then doubling to whole chunks; a warm read after it is whole chunks
    /// again.
    @Test(arguments: [first + 1, chunk, 3 * chunk + 12_345])
    func coldFilesStartWithASmallChunk(size: Int) async throws {
        #expect(Self.first < Self.chunk)
        try await Self.withFile(size: size) { location, bytes, read, path in
            try Self.evict(path)
            let cold = try await Self.collect(read, location)
            #expect(cold.bytes == bytes)
            #expect(cold.sizes == Self.schedule(size, firstChunk: Self.first))
            let warm = try await Self.collect(read, location)
            #expect(warm.bytes == bytes)
            #expect(warm.sizes == Self.schedule(size, firstChunk: Self.chunk))
        }
    }

    /// A cold range that starts inside a page: the same schedule from its first byte, and
    /// exactly its bytes.
    @Test func coldRangesStartWithASmallChunkToo() async throws {
        let size = 3 * Self.chunk + 99
        try await Self.withFile(size: size) { location, bytes, read, path in
            let range = 17...(2 * Self.chunk + 5)
            try Self.evict(path)
            let cold = try await Self.collect(read, location, Int64(range.lowerBound)...Int64(range.upperBound))
            #expect(cold.bytes == bytes.getSlice(at: range.lowerBound, length: range.count))
            #expect(cold.sizes == Self.schedule(range.count, firstChunk: Self.first))
        }
    }
    #endif

    @Test func rangesAcrossChunkBoundariesAreExact() async throws {
        let size = 3 * Self.chunk + 99
        try await Self.withFile(size: size) { location, bytes, read, _ in
            for range in [0...0, (Self.chunk - 3)...(Self.chunk + 2), 17...(size - 1), (size - 1)...(size - 1),
                          (Self.chunk / 2)...(2 * Self.chunk + Self.chunk / 2)] {
                var collected = ByteBuffer()
                try await read(location, Int64(range.lowerBound)...Int64(range.upperBound)) { collected.writeImmutableBuffer($0) }
                #expect(collected == bytes.getSlice(at: range.lowerBound, length: range.count), "range \(range)")
            }
        }
    }

    struct ClientWentAway: Error {}

    @Test func aFailingConsumerStopsTheReadWithItsError() async throws {
        try await Self.withFile(size: 4 * Self.chunk) { location, _, read, _ in
            var delivered = 0
            await #expect(throws: ClientWentAway.self) {
                try await read(location, nil) { _ in
                    delivered += 1
                    throw ClientWentAway()
                }
            }
            #expect(delivered == 1)
        }
    }
}
