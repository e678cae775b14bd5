import HTTPTypes

/// Header names of the registry protocol (OCI distribution-spec, Docker Registry HTTP API v2).
extension HTTPField.Name {
    static let dockerContentDigest = Self("Docker-Content-Digest")!
    static let dockerDistributionAPIVersion = Self("Docker-Distribution-API-Version")!
    static let dockerUploadUUID = Self("Docker-Upload-UUID")!
    static let ociSubject = Self("OCI-Subject")!
    static let ociTag = Self("OCI-Tag")!
    static let ociFiltersApplied = Self("OCI-Filters-Applied")!
    static let link = Self("Link")!
}

/// Values fixed by the protocol.
enum RegistryProtocol {
    /// `Docker-Distribution-API-Version` on every `/v2/` response.
    static let apiVersion = "registry/2.0"
}
