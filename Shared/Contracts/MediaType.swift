/// Media types the registry understands (OCI image-spec "Media Types", Docker image manifest v2.2).
package enum MediaType {
    package static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    package static let ociIndex = "application/vnd.oci.image.index.v1+json"
    package static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    package static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    package static let dockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json"
    package static let dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    package static let ociEmpty = "application/vnd.oci.empty.v1+json"
    package static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    package static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    package static let dockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar"
    package static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"

    /// Manifest types accepted on push.
    package static let manifests: Set<String> = [ociManifest, ociIndex, dockerManifest, dockerManifestList]
    /// Of those, the ones that list other manifests.
    package static let indexes: Set<String> = [ociIndex, dockerManifestList]

    /// Layer media types whose blobs need not be pushed (OCI "non-distributable", Docker "foreign").
    package static func isNonDistributable(_ mediaType: String) -> Bool {
        mediaType.contains(".nondistributable.") || mediaType.contains(".foreign.")
    }

    /// `type/subtype` without parameters, lowercased, as sent in a `Content-Type` header.
    package static func essence(_ contentType: some StringProtocol) -> String {
        let base = contentType.split(separator: ";", maxSplits: 1).first ?? ""
        return base.trimmingWhitespace().lowercased()
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> Substring {
        let scalars = self[...]
        let start = scalars.firstIndex { !$0.isWhitespace } ?? scalars.endIndex
        let end = scalars.lastIndex { !$0.isWhitespace }.map { scalars.index(after: $0) } ?? start
        return Substring(scalars[start..<Swift.max(start, end)])
    }
}
