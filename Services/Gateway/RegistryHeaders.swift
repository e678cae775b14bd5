import HTTPTypes

/// Header names of the registry protocol (OCI distribution-spec, Docker Registry HTTP API v2).
extension HTTPField.Name {
    package static let dockerContentDigest = Self("Docker-Content-Digest")!
    package static let dockerDistributionAPIVersion = Self("Docker-Distribution-API-Version")!
    package static let dockerUploadUUID = Self("Docker-Upload-UUID")!
    package static let ociSubject = Self("OCI-Subject")!
    package static let ociTag = Self("OCI-Tag")!
    package static let ociFiltersApplied = Self("OCI-Filters-Applied")!
    package static let link = Self("Link")!
    package static let forwardedProto = Self("X-Forwarded-Proto")!
}

/// Values fixed by the protocol.
enum RegistryProtocol {
    /// `Docker-Distribution-API-Version` on every `/v2/` response.
    static let apiVersion = "registry/2.0"
}
