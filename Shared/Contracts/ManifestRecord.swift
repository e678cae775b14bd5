import NIOCore

/// A stored manifest, exactly as it was pushed.
public struct ManifestRecord: Sendable, Equatable {
    public var digest: Digest
    public var mediaType: String
    public var bytes: ByteBuffer

    public init(digest: Digest, mediaType: String, bytes: ByteBuffer) {
        self.digest = digest
        self.mediaType = mediaType
        self.bytes = bytes
    }
}

/// A manifest push, validated by the gateway: the bytes, their digest and what they reference.
public struct ManifestPut: Sendable {
    public var repository: RepositoryName
    public var digest: Digest
    public var bytes: ByteBuffer
    public var document: ManifestDocument
    /// Tags to point at the manifest (empty for a push by digest without `?tag=`).
    public var tags: [Tag]
    /// Who pushed, recorded with each tag.
    public var pushedBy: String?

    public init(
        repository: RepositoryName, digest: Digest, bytes: ByteBuffer, document: ManifestDocument, tags: [Tag],
        pushedBy: String?
    ) {
        self.repository = repository
        self.digest = digest
        self.bytes = bytes
        self.document = document
        self.tags = tags
        self.pushedBy = pushedBy
    }
}
