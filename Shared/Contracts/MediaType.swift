/// Media types the registry understands (OCI image-spec "Media Types", Docker image manifest v2.2).
public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json"
    public static let dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    public static let ociEmpty = "application/vnd.oci.empty.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let dockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"

    /// Manifest types accepted on push.
    public static let manifests: Set<String> = [ociManifest, ociIndex, dockerManifest, dockerManifestList]
    /// Of those, the ones that list other manifests.
    public static let indexes: Set<String> = [ociIndex, dockerManifestList]

    /// Layer media types whose blobs need not be pushed (OCI "non-distributable", Docker "foreign").
    public static func isNonDistributable(_ mediaType: String) -> Bool {
        mediaType.contains(".nondistributable.") || mediaType.contains(".foreign.")
    }

    /// `type/subtype` without parameters, lowercased, as sent in a `Content-Type` header.
    public static func essence(_ contentType: some StringProtocol) -> String {
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
