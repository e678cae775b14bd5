import Foundation
import NIOCore
import TestSupport
import Testing

@testable import Registry

/// The tar reader against archives written by GNU tar in its formats, fed in awkward chunk sizes.
@Suite struct TarReaderTests {
    static let content = #"{"url":"git:https://example.com/app.git","revision":"abc","author":"jdoe","status":""}"#

    /// A tar of `files` (path → content) in `format`, as GNU tar writes it.
    static func archive(_ files: [String: String], format: String, root: String = ".") async throws -> ByteBuffer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tar-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        for (path, content) in files {
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content.utf8).write(to: url)
        }
        let output = directory.appendingPathComponent("out.tar").path
        try await Command.run(["tar", "--format=\(format)", "-C", directory.path, "-cf", output, "--exclude=out.tar", root])
        return ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: output)))
    }

    static func read(_ archive: ByteBuffer, chunk: Int) throws -> TarReader {
        var reader = TarReader(wanted: TarReader.scmSourceNames)
        var rest = archive
        while rest.readableBytes > 0, !reader.finished {
            var slice = rest.readSlice(length: min(chunk, rest.readableBytes))!
            try reader.feed(&slice)
        }
        return reader
    }

    @Test(arguments: ["gnu", "ustar", "pax", "v7"])
    func findsTheFileAtTheRoot(format: String) async throws {
        let long = String(repeating: "d", count: 90) + "/" + String(repeating: "f", count: 90)
        let files = ["a/scm-source.json": "not this one", long: String(repeating: "x", count: 3000),
                     "big": String(repeating: "y", count: 70_000), "scm-source.json": Self.content]
        let archive = try await Self.archive(format == "v7" ? files.filter { $0.key != long } : files, format: format)
        for chunk in [1, 7, 511, 512, 513, 4096, 1 << 20] {
            let reader = try Self.read(archive, chunk: chunk)
            #expect(reader.found.map { String(buffer: $0) } == Self.content, "chunk \(chunk)")
        }
    }

    @Test func stopsAtTheEndWithoutIt() async throws {
        let archive = try await Self.archive(["a/scm-source.json": "nested", "other.json": "{}"], format: "gnu")
        let reader = try Self.read(archive, chunk: 100)
        #expect(reader.found == nil)
        #expect(reader.finished)
    }

    @Test func namesAreRelativeToTheRoot() {
        #expect(TarReader.normalize("./scm-source.json") == "scm-source.json")
        #expect(TarReader.normalize("/scm-source.json") == "scm-source.json")
        #expect(TarReader.normalize("scm-source.json") == "scm-source.json")
        #expect(TarReader.normalize("./a/scm-source.json") == "a/scm-source.json")
        #expect(TarReader.paxPath("30 mtime=1.0\n27 path=scm-source.json\n") == "scm-source.json")
    }

    @Test func garbageIsAnError() {
        var reader = TarReader(wanted: TarReader.scmSourceNames)
        var block = ByteBuffer(repeating: UInt8(ascii: "z"), count: 1024)
        #expect(throws: TarError.self) { try reader.feed(&block) }
    }
}
