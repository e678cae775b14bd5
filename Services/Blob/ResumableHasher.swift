import CHashState
import Contracts
import Foundation
import NIOCore
import Runtime

/// A running SHA-256/512 whose state is plain bytes: it is saved next to an upload's data after
/// every request, so whichever blob replica receives the next request of the session continues
/// the digest where it stands instead of re-reading the bytes.
struct ResumableHasher: Sendable {
    let algorithm: Contracts.Digest.Algorithm
    private(set) var state: [UInt8]

    private var code: Int32 { self.algorithm == .sha256 ? 256 : 512 }

    init(_ algorithm: Contracts.Digest.Algorithm) {
        self.algorithm = algorithm
        self.state = [UInt8](repeating: 0, count: pierone_hash_state_size(algorithm == .sha256 ? 256 : 512))
        let code = self.code
        self.state.withUnsafeMutableBytes { pierone_hash_init(code, $0.baseAddress) }
    }

    /// A state saved by `serialized`, or nil when it does not fit the algorithm.
    init?(algorithm: Contracts.Digest.Algorithm, state: [UInt8]) {
        self.init(algorithm)
        guard state.count == self.state.count else { return nil }
        self.state = state
    }

    mutating func update(_ buffer: ByteBuffer) {
        let code = self.code
        buffer.withUnsafeReadableBytes { bytes in
            self.state.withUnsafeMutableBytes { pierone_hash_update(code, $0.baseAddress, bytes.baseAddress, bytes.count) }
        }
    }

    func finalize() -> Contracts.Digest {
        var state = self.state
        var output = [UInt8](repeating: 0, count: self.algorithm == .sha256 ? 32 : 64)
        let code = self.code
        state.withUnsafeMutableBytes { raw in
            output.withUnsafeMutableBufferPointer { pierone_hash_final(code, raw.baseAddress, $0.baseAddress) }
        }
        let hex = DigestHasher.hex(output)
        return Contracts.Digest(algorithm: self.algorithm, hex: hex)!
    }
}
