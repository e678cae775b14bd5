/// The one error catalog of the registry: OCI distribution-spec error codes ("Error Codes")
/// plus `UNKNOWN` and `UNAVAILABLE` from CNCF Distribution, each with its HTTP status.
///
/// Every service throws this type for failures a client must see; the gateway renders it as
/// `{"errors":[{"code","message","detail"}]}`. Anything else becomes a 500 `UNKNOWN` whose cause
/// is only logged.
package struct RegistryError: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    /// Every failure a client can see, each with the OCI code it is rendered as (`name`) and its
    /// HTTP status. The first cases are the spec's codes with the status the spec pairs them with;
    /// the others are the same codes (or `UNKNOWN`) where the registry answers another status. No
    /// throw site chooses a status: a new status is a new case here.
    package enum Code: String, Sendable, Codable, CaseIterable {
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
        /// 416 `BLOB_UPLOAD_INVALID`: a chunk or range that does not fit where the upload or blob stands.
        case rangeNotSatisfiable = "RANGE_NOT_SATISFIABLE"
        /// 409 `BLOB_UPLOAD_INVALID`: another request is writing to or committing the session.
        case uploadBusy = "UPLOAD_BUSY"
        /// 413 `SIZE_INVALID`: a body beyond the registry's limit.
        case tooLarge = "TOO_LARGE"
        /// 409 `DENIED`: a change the tag rules or the repository's content refuse (an immutable
        /// tag, `latest`, content still in use).
        case conflict = "CONFLICT"
        /// 404 `UNSUPPORTED`: no such resource (path).
        case routeUnknown = "ROUTE_UNKNOWN"
        /// 400 `UNSUPPORTED`: a parameter the registry does not accept (a page size, an algorithm).
        case parameterInvalid = "PARAMETER_INVALID"
        /// 412 `UNSUPPORTED`: a prefix that names more than one thing.
        case ambiguous = "AMBIGUOUS"
        /// 400 `UNKNOWN`: a malformed request (internal API callers, framework-level failures).
        case requestInvalid = "REQUEST_INVALID"
        /// 400 `BLOB_UNKNOWN`: a blob location that is not this storage's (an internal caller's mistake).
        case blobLocationInvalid = "BLOB_LOCATION_INVALID"
        /// 502 `UNKNOWN`: another service answered something the registry cannot use.
        case badGateway = "BAD_GATEWAY"

        /// The OCI error code the client sees.
        package var name: String {
            switch self {
            case .rangeNotSatisfiable, .uploadBusy: Code.blobUploadInvalid.rawValue
            case .tooLarge: Code.sizeInvalid.rawValue
            case .conflict: Code.denied.rawValue
            case .routeUnknown, .parameterInvalid, .ambiguous: Code.unsupported.rawValue
            case .requestInvalid, .badGateway: Code.unknown.rawValue
            case .blobLocationInvalid: Code.blobUnknown.rawValue
            default: self.rawValue
            }
        }

        /// The HTTP status of the code.
        package var status: Int {
            switch self {
            case .blobUnknown, .blobUploadUnknown, .manifestUnknown, .nameUnknown, .routeUnknown: 404
            case .blobUploadInvalid, .digestInvalid, .manifestBlobUnknown, .manifestInvalid, .nameInvalid,
                 .sizeInvalid, .parameterInvalid, .requestInvalid, .blobLocationInvalid: 400
            case .unauthorized: 401
            case .denied: 403
            case .unsupported: 405
            case .uploadBusy, .conflict: 409
            case .ambiguous: 412
            case .tooLarge: 413
            case .rangeNotSatisfiable: 416
            case .tooManyRequests: 429
            case .unknown: 500
            case .badGateway: 502
            case .unavailable: 503
            }
        }

        /// The message the spec gives for the code.
        package var defaultMessage: String {
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
            case .rangeNotSatisfiable: "requested range not satisfiable"
            case .uploadBusy: "the upload is busy"
            case .tooLarge: "request body too large"
            case .conflict: "the change conflicts with the repository's content"
            case .routeUnknown: "no such resource"
            case .parameterInvalid: "a parameter is invalid"
            case .ambiguous: "the prefix is ambiguous"
            case .requestInvalid: "malformed request"
            case .badGateway: "a service answered unexpectedly"
            case .blobLocationInvalid: "not a blob location of this storage"
            }
        }
    }

    package var code: Code
    package var message: String
    package var detail: [String: String]?
    /// The HTTP status, always the code's.
    package var status: Int { self.code.status }

    package init(_ code: Code, _ message: String? = nil, detail: [String: String]? = nil) {
        self.code = code
        self.message = message ?? code.defaultMessage
        self.detail = detail
    }

    /// The code for an HTTP status that a framework answered (a route or method not found, a body
    /// too large): the same catalog, so package and internal answers agree.
    package init(status: Int, message: String?) {
        let code: Code = switch status {
        case 404: .routeUnknown
        case 405: .unsupported
        case 413: .tooLarge
        case 400..<500: .requestInvalid
        case 503: .unavailable
        default: .unknown
        }
        self.init(code, message)
    }

    package var description: String { "\(self.code.name) (\(self.status)): \(self.message)" }

    // The internal API's JSON: `code` is the OCI code and `status` the status, as services of
    // earlier versions send and expect them (a rolling upgrade mixes versions); `case` names the
    // catalog entry, for the codes that share an OCI code.
    private enum CodingKeys: String, CodingKey {
        case code, status, message, detail
        case entry = "case"
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let name = try container.decode(String.self, forKey: .code)
        let status = try container.decodeIfPresent(Int.self, forKey: .status)
        let entry = try container.decodeIfPresent(String.self, forKey: .entry).flatMap(Code.init(rawValue:))
        self.code = entry
            ?? Code.allCases.first { $0.name == name && $0.status == status }
            ?? Code(rawValue: name)
            ?? .unknown
        self.message = try container.decode(String.self, forKey: .message)
        self.detail = try container.decodeIfPresent([String: String].self, forKey: .detail)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.code.name, forKey: .code)
        try container.encode(self.status, forKey: .status)
        try container.encode(self.code.rawValue, forKey: .entry)
        try container.encode(self.message, forKey: .message)
        try container.encodeIfPresent(self.detail, forKey: .detail)
    }
}

extension RegistryError {
    /// 416: a chunk that does not continue the upload where it stands.
    package static func rangeNotSatisfiable(_ message: String, offset: Int64) -> RegistryError {
        RegistryError(.rangeNotSatisfiable, message, detail: ["offset": String(offset)])
    }

    /// 405: deleting a tag the policy makes immutable.
    package static func tagImmutableDelete(repository: RepositoryName, tag: String) -> RegistryError {
        RegistryError(
            .unsupported,
            "tag \(repository):\(tag) is immutable and cannot be deleted (see MUTABLE_TAGS and TAG_POLICY_FILE)",
            detail: ["repository": repository.value, "tag": tag]
        )
    }

    /// 409: deleting content that other content of the repository still needs.
    package static func inUse(_ what: String, by user: Digest, in repository: RepositoryName) -> RegistryError {
        RegistryError(
            .conflict, "\(what) is used by manifest \(user) in \(repository); delete that manifest first",
            detail: ["repository": repository.value, "usedBy": user.description]
        )
    }

    /// 409: a tag the policy makes immutable already names another manifest.
    package static func tagImmutable(repository: RepositoryName, tag: String, current: Digest) -> RegistryError {
        RegistryError(
            .conflict,
            "tag \(repository):\(tag) is immutable and already points to \(current); push a new tag instead",
            detail: ["repository": repository.value, "tag": tag, "digest": current.description]
        )
    }
}
