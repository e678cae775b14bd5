import Contracts
import Crypto
import NIOCore

/// The digest of bytes in memory, fed in pieces (swift-crypto; BoringSSL assembly where available), for
/// the algorithms the registry verifies. Its state cannot be saved; an upload, whose digest must
/// continue on another replica, uses the blob service's `ResumableHasher` instead.
package struct DigestHasher: Sendable {
    private enum State: Sendable {
        case sha256(SHA256)
        case sha512(SHA512)
    }

    private var state: State
    package let algorithm: Contracts.Digest.Algorithm

    package init(_ algorithm: Contracts.Digest.Algorithm) {
        self.algorithm = algorithm
        switch algorithm {
        case .sha256: self.state = .sha256(SHA256())
        case .sha512: self.state = .sha512(SHA512())
        }
    }

    package mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            switch self.state {
            case .sha256(var hasher):
                hasher.update(bufferPointer: bytes)
                self.state = .sha256(hasher)
            case .sha512(var hasher):
                hasher.update(bufferPointer: bytes)
                self.state = .sha512(hasher)
            }
        }
    }

    package func finalize() -> Contracts.Digest {
        let hex: String
        switch self.state {
        case .sha256(let hasher): hex = Self.hex(hasher.finalize())
        case .sha512(let hasher): hex = Self.hex(hasher.finalize())
        }
        // The hex of a real hash always has the algorithm's length.
        return Contracts.Digest(algorithm: self.algorithm, hex: hex)!
    }

    /// Lowercase hexadecimal of `digest`.
    package static func hex(_ digest: some Sequence<UInt8>) -> String {
        let table = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        for byte in digest {
            bytes.append(table[Int(byte >> 4)])
            bytes.append(table[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension DigestHasher {
    /// The digest of bytes already in memory.
    package static func digest(of buffer: ByteBuffer, algorithm: Contracts.Digest.Algorithm = .sha256) -> Contracts.Digest {
        var hasher = DigestHasher(algorithm)
        hasher.update(buffer)
        return hasher.finalize()
    }
}
