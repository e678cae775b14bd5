import Contracts
import NIOCore

/// A request body that may not carry more than `limit` bytes (the length its `Content-Range`
/// declares): a chunk that runs past its range fails with `SIZE_INVALID` before the excess is
/// passed on, instead of being appended as if the range had said so. Without a limit it passes
/// everything through.
struct BoundedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let limit: Int64?

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var remaining: Int64?

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await self.base.next() else { return nil }
            if let remaining {
                let size = Int64(chunk.readableBytes)
                guard size <= remaining else {
                    throw RegistryError(.sizeInvalid, "the body is longer than its Content-Range")
                }
                self.remaining = remaining - size
            }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.base.makeAsyncIterator(), remaining: self.limit)
    }
}
