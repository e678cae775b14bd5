import Foundation
import Gateway

// `pierone-fuzz`: the parsers of untrusted input (`FuzzTargets`) as one libFuzzer binary.
//
// Built by `scripts/fuzz` with `-sanitize=fuzzer -DFUZZING` in `.build-fuzz`: libFuzzer then owns
// `main` and calls `LLVMFuzzerTestOneInput` with `FUZZ_TARGET` naming the target. Built normally,
// `pierone-fuzz TARGET FILE…` replays inputs (crash files) through a target and reports each.

#if FUZZING
private let target = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? "manifest"

/// libFuzzer's driver (compiler-rt, LLVM 11+). SwiftPM names an executable's entry point
/// `<module>_main`; defining it here keeps libFuzzer's own `main` out of the link.
@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("PierOneFuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runDriver(&count, &arguments, fuzzOneInput)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do {
        try FuzzTargets.run(target, bytes)
    } catch {
        // An invariant broke: stop like a crash, so libFuzzer keeps the input.
        fatalError("\(target): \(error)")
    }
    return 0
}
#else
@main
struct FuzzReplay {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard let target = arguments.first, FuzzTargets.names.contains(target) else {
            print("usage: pierone-fuzz TARGET FILE…   (targets: \(FuzzTargets.names.joined(separator: ", ")))")
            exit(64)
        }
        var failed = false
        for file in arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: file) else {
                print("\(file): unreadable")
                failed = true
                continue
            }
            do {
                try FuzzTargets.run(target, Array(data))
                print("\(file): ok")
            } catch {
                print("\(file): \(error)")
                failed = true
            }
        }
        exit(failed ? 1 : 0)
    }
}
#endif
