/// The one error catalog of the registry: OCI distribution-spec error codes ("Error Codes")
/// plus `UNKNOWN` and `UNAVAILABLE` from CNCF Distribution, each with its HTTP status.
///
/// Every service throws this type for failures a client must see; the gateway renders it as
/// `{"errors":[{"code","message","detail"}]}`. Anything else becomes a 500 `UNKNOWN` whose cause
/// is only logged.
public struct RegistryError: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable, CaseIterable {
        case blobUnknown = "BLOB_UNKNOWN"
        case blobUploadInvalid = "BLOB_UPLOAD_INVALID"
        case blobUploadUnknown = "BLOB_UPLOAD_UNKNOWN"
        case digestInvalid = "DIGEST_INVALID"
        case manifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
        case manifestInvalid = "MANIFEST_INVALID"
        case manifestUnknown = "MANIFEST_UNKNOWN"
        case nameInvalid = "NAME_INVALID"
        case nameUnknown = "NAME_UNKNOWN"
        case sizeInvalid = "SIZE_INVALID"
        case unauthorized = "UNAUTHORIZED"
        case denied = "DENIED"
        case unsupported = "UNSUPPORTED"
        case tooManyRequests = "TOOMANYREQUESTS"
        case unknown = "UNKNOWN"
        case unavailable = "UNAVAILABLE"

        /// The status the spec pairs with the code; individual errors may override it.
        public var defaultStatus: Int {
            switch self {
            case .blobUnknown, .blobUploadUnknown, .manifestUnknown, .nameUnknown: 404
            case .blobUploadInvalid, .digestInvalid, .manifestBlobUnknown, .manifestInvalid, .nameInvalid,
                 .sizeInvalid: 400
            case .unauthorized: 401
            case .denied: 403
            case .unsupported: 405
            case .tooManyRequests: 429
            case .unknown: 500
            case .unavailable: 503
            }
        }

        /// The message the spec gives for the code.
        public var defaultMessage: String {
            switch self {
            case .blobUnknown: "blob unknown to registry"
            case .blobUploadInvalid: "blob upload invalid"
            case .blobUploadUnknown: "blob upload unknown to registry"
            case .digestInvalid: "provided digest did not match uploaded content"
            case .manifestBlobUnknown: "manifest references a manifest or blob unknown to registry"
            case .manifestInvalid: "manifest invalid"
            case .manifestUnknown: "manifest unknown to registry"
            case .nameInvalid: "invalid repository name"
            case .nameUnknown: "repository name not known to registry"
            case .sizeInvalid: "provided length did not match content length"
            case .unauthorized: "authentication required"
            case .denied: "requested access to the resource is denied"
            case .unsupported: "the operation is unsupported"
            case .tooManyRequests: "too many requests"
            case .unknown: "unknown error"
            case .unavailable: "service unavailable"
            }
        }
    }

    public var code: Code
    public var message: String
    public var detail: [String: String]?
    public var status: Int

    public init(_ code: Code, _ message: String? = nil, detail: [String: String]? = nil, status: Int? = nil) {
        self.code = code
        self.message = message ?? code.defaultMessage
        self.detail = detail
        self.status = status ?? code.defaultStatus
    }

    public var description: String { "\(self.code.rawValue) (\(self.status)): \(self.message)" }
}

extension RegistryError {
    /// 416: a chunk that does not continue the upload where it stands.
    public static func rangeNotSatisfiable(_ message: String, offset: Int64) -> RegistryError {
        RegistryError(.blobUploadInvalid, message, detail: ["offset": String(offset)], status: 416)
    }

    /// 405: deleting a tag the policy makes immutable.
    public static func tagImmutableDelete(repository: RepositoryName, tag: String) -> RegistryError {
        RegistryError(
            .unsupported,
            "tag \(repository):\(tag) is immutable and cannot be deleted (see MUTABLE_TAGS and TAG_POLICY_FILE)",
            detail: ["repository": repository.value, "tag": tag], status: 405
        )
    }

    /// 409: deleting content that other content of the repository still needs.
    public static func inUse(_ what: String, by user: Digest, in repository: RepositoryName) -> RegistryError {
        RegistryError(
            .denied, "\(what) is used by manifest \(user) in \(repository); delete that manifest first",
            detail: ["repository": repository.value, "usedBy": user.description], status: 409
        )
    }

    /// 409: a tag the policy makes immutable already names another manifest.
    public static func tagImmutable(repository: RepositoryName, tag: String, current: Digest) -> RegistryError {
        RegistryError(
            .denied,
            "tag \(repository):\(tag) is immutable and already points to \(current); push a new tag instead",
            detail: ["repository": repository.value, "tag": tag, "digest": current.description],
            status: 409
        )
    }
}
