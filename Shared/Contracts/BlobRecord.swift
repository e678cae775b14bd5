/// A committed blob: verified, durable, and where its bytes live in storage.
public struct BlobRecord: Sendable, Equatable, Codable {
    public var digest: Digest
    public var size: Int64
    /// Storage-driver specific location of the bytes; opaque to everyone but the blob service.
    public var location: String

    public init(digest: Digest, size: Int64, location: String) {
        self.digest = digest
        self.size = size
        self.location = location
    }
}
