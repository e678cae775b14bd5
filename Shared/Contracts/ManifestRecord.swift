import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A stored manifest, exactly as it was pushed.
package struct ManifestRecord: Sendable, Equatable {
    package var digest: Digest
    package var mediaType: String
    package var bytes: ByteBuffer

    package init(digest: Digest, mediaType: String, bytes: ByteBuffer) {
        self.digest = digest
        self.mediaType = mediaType
        self.bytes = bytes
    }
}

/// A manifest push, validated by the gateway: the bytes, their digest and what they reference.
package struct ManifestPut: Sendable {
    package var repository: RepositoryName
    package var digest: Digest
    package var bytes: ByteBuffer
    package var document: ManifestDocument
    /// Tags to point at the manifest (empty for a push by digest without `?tag=`).
    package var tags: [Tag]
    /// Who pushed, recorded with each tag.
    package var pushedBy: String?
    /// Where the image was built from, from a trusted pusher's `X-SCM-Source` header.
    package var scmSource: ScmSource?

    package init(
        repository: RepositoryName, digest: Digest, bytes: ByteBuffer, document: ManifestDocument, tags: [Tag],
        pushedBy: String?, scmSource: ScmSource? = nil
    ) {
        self.scmSource = scmSource
        self.repository = repository
        self.digest = digest
        self.bytes = bytes
        self.document = document
        self.tags = tags
        self.pushedBy = pushedBy
    }
}

// Manifest bytes travel between the services as base64 in JSON (they are at most 4 MiB).
extension ManifestRecord: Codable {
    private enum CodingKeys: String, CodingKey { case digest, mediaType, bytes }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            digest: try container.decode(Digest.self, forKey: .digest),
            mediaType: try container.decode(String.self, forKey: .mediaType),
            bytes: ByteBuffer(bytes: try container.decode(Data.self, forKey: .bytes))
        )
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.digest, forKey: .digest)
        try container.encode(self.mediaType, forKey: .mediaType)
        try container.encode(Data(self.bytes.readableBytesView), forKey: .bytes)
    }
}

extension ManifestPut: Codable {
    private enum CodingKeys: String, CodingKey { case repository, digest, bytes, document, tags, pushedBy, scmSource }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            repository: try container.decode(RepositoryName.self, forKey: .repository),
            digest: try container.decode(Digest.self, forKey: .digest),
            bytes: ByteBuffer(bytes: try container.decode(Data.self, forKey: .bytes)),
            document: try container.decode(ManifestDocument.self, forKey: .document),
            tags: try container.decode([Tag].self, forKey: .tags),
            pushedBy: try container.decodeIfPresent(String.self, forKey: .pushedBy),
            scmSource: try container.decodeIfPresent(ScmSource.self, forKey: .scmSource)
        )
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.repository, forKey: .repository)
        try container.encode(self.digest, forKey: .digest)
        try container.encode(Data(self.bytes.readableBytesView), forKey: .bytes)
        try container.encode(self.document, forKey: .document)
        try container.encode(self.tags, forKey: .tags)
        try container.encodeIfPresent(self.pushedBy, forKey: .pushedBy)
        try container.encodeIfPresent(self.scmSource, forKey: .scmSource)
    }
}

extension ManifestPut {
    /// A descriptor must declare the size of the blob it names: clients trust it (containerd checks
    /// it on pull, the layer scan and storage statistics read it). `MANIFEST_INVALID` otherwise.
    package static func checkSize(of blob: Digest, declared: Int64, stored: Int64) throws(RegistryError) {
        guard declared == stored else {
            throw RegistryError(
                .manifestInvalid, "descriptor of \(blob) declares \(declared) bytes but the blob has \(stored)",
                detail: ["digest": blob.description, "declared": String(declared), "stored": String(stored)]
            )
        }
    }
}
