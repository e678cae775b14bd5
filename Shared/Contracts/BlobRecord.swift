/// A committed blob: verified, durable, and where its bytes live in storage.
package struct BlobRecord: Sendable, Equatable, Codable {
    package var digest: Digest
    package var size: Int64
    /// Storage-driver specific location of the bytes; opaque to everyone but the blob service.
    package var location: String

    package init(digest: Digest, size: Int64, location: String) {
        self.digest = digest
        self.size = size
        self.location = location
    }
}
