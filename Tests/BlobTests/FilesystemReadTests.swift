import Foundation
import NIOCore
import Testing
import _NIOFileSystem

@testable import Blob

/// The filesystem driver's read loop: chunked, in order, exact at the edges, and a failing
/// consumer stops it with its own error.
@Suite struct FilesystemReadTests {
    static let chunk = Int(FilesystemDriver.readChunkSize.bytes)

    typealias Read = (String, ClosedRange<Int64>?, (ByteBuffer) async throws -> Void) async throws -> Void

    static func withFile(size: Int, _ body: (String, ByteBuffer, Read) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-read-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bytes = StorageFixture.pattern(size)
        try Data(bytes.readableBytesView).write(to: directory.appendingPathComponent("blob"))
        let driver = FilesystemDriver(root: FilePath(directory.path))
        try await body("blob", bytes) { location, range, sink in
            try await driver.read(location: location, range: range, into: sink)
        }
    }

    @Test(arguments: [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + 12_345])
    func wholeFilesArriveInChunksOfAtMostTheChunkSize(size: Int) async throws {
        try await Self.withFile(size: size) { location, bytes, read in
            var collected = ByteBuffer()
            var sizes: [Int] = []
            try await read(location, nil) { chunk in
                sizes.append(chunk.readableBytes)
                collected.writeImmutableBuffer(chunk)
            }
            #expect(collected == bytes)
            #expect(sizes.allSatisfy { $0 > 0 && $0 <= Self.chunk })
            #expect(sizes.count == (size + Self.chunk - 1) / Self.chunk)
        }
    }

    @Test func rangesAcrossChunkBoundariesAreExact() async throws {
        let size = 3 * Self.chunk + 99
        try await Self.withFile(size: size) { location, bytes, read in
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
        try await Self.withFile(size: 4 * Self.chunk) { location, _, read in
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
