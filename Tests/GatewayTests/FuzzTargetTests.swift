import Foundation
import Testing

@testable import Gateway

/// A bounded property-based pass over every fuzz target (`FuzzTargets`), in the test command:
/// the corpus under `Tests/FuzzCorpus/<target>/` (seeds, and every crash the fuzzers found) is
/// replayed, then mutated with a fixed seed — bit flips, cut and repeated spans, and the tokens
/// that broke parsers before (huge numbers, signs, quotes, brackets, escapes). `scripts/fuzz`
/// runs the same targets under libFuzzer for as long as it is given.
@Suite struct FuzzTargetTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus")
    static let iterations = 20_000

    static let tokens: [[UInt8]] = [
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-1", "0", "18446744073709551616",
        "\"", "\\", "\\u0000", "\\ud800", "{", "}", "[", "]", ":", ",", "/", "..", "%2F", "-", "=", " ", "\u{0}",
        "bytes=", "Basic ", "Bearer ", "sha256:", "repository:", "\"layers\":[]", "\"manifests\":[]", "\"size\":-1",
        "é", "\u{1F600}",
    ].map { Array($0.utf8) }

    /// SplitMix64: the same inputs on every run.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func mutate(_ input: [UInt8], _ random: inout Generator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0...bytes.count, using: &random)
            switch Int.random(in: 0..<6, using: &random) {
            case 0 where !bytes.isEmpty:
                let index = Int.random(in: 0..<bytes.count, using: &random)
                bytes[index] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &random)
            case 1:
                bytes.insert(contentsOf: Self.tokens.randomElement(using: &random)!, at: position)
            case 2 where !bytes.isEmpty:
                let end = min(bytes.count, position + Int.random(in: 1...16, using: &random))
                bytes.removeSubrange(min(position, end)..<end)
            case 3 where position < bytes.count:
                let end = min(bytes.count, position + Int.random(in: 1...32, using: &random))
                bytes.insert(contentsOf: bytes[position..<end], at: position)
            case 4:
                bytes.insert(UInt8.random(in: 0...255, using: &random), at: position)
            default:
                bytes = Array(bytes.prefix(position))
            }
        }
        return bytes
    }

    static func inputs(of target: String) -> [[UInt8]] {
        let folder = Self.corpus.appendingPathComponent(target)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return files.sorted().compactMap { FileManager.default.contents(atPath: folder.appendingPathComponent($0).path).map(Array.init) }
    }

    @Test(arguments: FuzzTargets.names)
    func target(_ name: String) throws {
        let corpus = Self.inputs(of: name)
        #expect(!corpus.isEmpty, "Tests/FuzzCorpus/\(name) holds seeds")
        for input in corpus {
            try FuzzTargets.run(name, input)
        }
        var random = Generator(state: UInt64(name.utf8.reduce(7) { $0 &* 31 &+ Int($1) }.magnitude))
        for iteration in 0..<Self.iterations {
            let seed = corpus[iteration % corpus.count]
            let input = Self.mutate(seed, &random)
            do {
                try FuzzTargets.run(name, input)
            } catch {
                Issue.record("\(name): \(error) for input \(input)")
                return
            }
        }
    }

    /// Inputs that broke parsers before these targets existed, kept as regressions.
    @Test func knownBadInputs() throws {
        try FuzzTargets.run("ranges", Array("0-9223372036854775807".utf8))
        try FuzzTargets.run("ranges", Array("bytes=-9223372036854775807".utf8))
        try FuzzTargets.run("json", Array(String(repeating: "[", count: 100_000).utf8))
        try FuzzTargets.run("manifest", Array(String(repeating: "{\"a\":", count: 100_000).utf8))
        try FuzzTargets.run("queries", Array("99999999999999999999999".utf8))
    }
}
