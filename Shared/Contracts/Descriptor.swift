/// An OCI content descriptor (image-spec "Descriptors"), with the fields the registry reads.
package struct Descriptor: Sendable, Equatable, Codable {
    package var mediaType: String
    package var digest: Digest
    package var size: Int64
    package var artifactType: String?
    package var annotations: [String: String]?
    package var urls: [String]?

    package init(
        mediaType: String, digest: Digest, size: Int64, artifactType: String? = nil,
        annotations: [String: String]? = nil, urls: [String]? = nil
    ) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.artifactType = artifactType
        self.annotations = annotations
        self.urls = urls
    }
}
