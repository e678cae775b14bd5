#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What the registry needs to know about a pushed manifest: its type, what it references and its
/// subject. The bytes themselves are stored untouched; this is only read from them.
package struct ManifestDocument: Sendable, Equatable, Codable {
    /// The media type the manifest is stored and served with.
    package var mediaType: String
    /// Blobs that must exist in the repository (config and distributable layers).
    package var blobs: [Digest]
    /// Manifests that must exist in the repository (children of an index).
    package var manifests: [Digest]
    /// The manifest this one refers to (referrers API); it need not exist.
    package var subject: Digest?
    /// `artifactType`, or for an image manifest without it the config media type.
    package var artifactType: String?
    package var annotations: [String: String]?
    /// The config of an image manifest (its digest is the image id).
    package var config: Digest?
    /// The distributable layers of an image manifest, in order (read for `scm-source.json`).
    package var layers: [Descriptor]?
    /// The size each descriptor of `blobs` declares, by digest: the stored blob must have it.
    /// Optional so that documents from a gateway of the previous version still decode.
    package var declaredSizes: [String: Int64]?

    package init(
        mediaType: String, blobs: [Digest], manifests: [Digest], subject: Digest?,
        artifactType: String?, annotations: [String: String]?, config: Digest? = nil, layers: [Descriptor]? = nil,
        declaredSizes: [String: Int64]? = nil
    ) {
        self.declaredSizes = declaredSizes
        self.config = config
        self.layers = layers
        self.mediaType = mediaType
        self.blobs = blobs
        self.manifests = manifests
        self.subject = subject
        self.artifactType = artifactType
        self.annotations = annotations
    }

    /// Every field of the manifest, index and descriptor shapes (image-spec), whose spelling must
    /// be exact: clients that match field names case-insensitively would read a `"Layers"` the
    /// registry does not.
    static let fieldNames: Set<String> = [
        "schemaVersion", "mediaType", "artifactType", "config", "layers", "manifests", "subject", "annotations",
        "digest", "size", "urls", "data", "platform", "architecture", "os", "os.version", "os.features", "variant",
        "features",
    ]

    /// Largest annotations (keys and values) of a manifest with a `subject`: the referrers API
    /// answers them for every referrer of the subject (cosign's, with certificate and bundle, are
    /// a few KiB).
    package static let maximumReferrerAnnotations = 64 * 1024

    /// Largest manifest accepted (OCI: registries SHOULD accept at least 4 MiB).
    package static let maximumSize = 4 * 1024 * 1024

    /// Parses and validates manifest bytes pushed with `contentType`.
    ///
    /// - Throws: `MANIFEST_INVALID` for malformed JSON, a schema version other than 2, a missing
    ///   required field, a `mediaType` that contradicts the `Content-Type`, or an unsupported type.
    package static func parse(_ bytes: some Collection<UInt8>, contentType: String?) throws(RegistryError)
        -> ManifestDocument
    {
        do {
            // Refused before decoding: a document parsers could read two ways (a repeated key at
            // any depth), or nested deeper than any manifest needs.
            try StrictJSON.check(bytes, fieldNames: Self.fieldNames)
        } catch {
            throw RegistryError(.manifestInvalid, "manifest is not unambiguous JSON: \(error)")
        }
        let raw: RawManifest
        do {
            raw = try JSONDecoder().decode(RawManifest.self, from: Data(bytes))
        } catch {
            throw RegistryError(.manifestInvalid, "manifest is not valid JSON for its type: \(Self.describe(error))")
        }
        let headerType = contentType.map { MediaType.essence($0) }.flatMap { type in
            type.isEmpty || type == "application/json" || type == "application/octet-stream" ? nil : type
        }
        if let headerType, let bodyType = raw.mediaType, headerType != bodyType {
            throw RegistryError(
                .manifestInvalid,
                "Content-Type \(headerType) does not match the manifest's mediaType \(bodyType)"
            )
        }
        let mediaType = headerType ?? raw.mediaType ?? (raw.manifests != nil ? MediaType.ociIndex : MediaType.ociManifest)
        if mediaType == MediaType.dockerSchema1 || mediaType == MediaType.dockerSchema1Signed {
            throw RegistryError(.manifestInvalid, "Docker schema 1 manifests are not supported; push schema 2 or OCI")
        }
        guard MediaType.manifests.contains(mediaType) else {
            throw RegistryError(.manifestInvalid, "unsupported manifest media type \(mediaType)")
        }
        guard raw.schemaVersion == 2 else {
            throw RegistryError(.manifestInvalid, "schemaVersion must be 2")
        }
        for descriptor in [raw.config, raw.subject].compactMap({ $0 }) + (raw.layers ?? []) + (raw.manifests ?? []) {
            guard descriptor.size >= 0 else {
                throw RegistryError(
                    .manifestInvalid, "descriptor \(descriptor.digest) has a negative size",
                    detail: ["digest": descriptor.digest.description, "size": String(descriptor.size)]
                )
            }
        }
        if raw.subject != nil, let annotations = raw.annotations {
            // Served with every referrers listing of the subject: bounded like a descriptor should be.
            let bytes = annotations.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
            guard bytes <= Self.maximumReferrerAnnotations else {
                throw RegistryError(
                    .manifestInvalid,
                    "the annotations of a manifest with a subject are limited to \(Self.maximumReferrerAnnotations / 1024) KiB",
                    detail: ["limit": String(Self.maximumReferrerAnnotations)]
                )
            }
        }
        if MediaType.indexes.contains(mediaType) {
            // CVE-2021-41190: a document that is an index and an image manifest at once.
            guard raw.layers == nil, raw.config == nil else {
                throw RegistryError(.manifestInvalid, "an index cannot have layers or a config (it would read as an image manifest too)")
            }
            guard let children = raw.manifests else {
                throw RegistryError(.manifestInvalid, "an index must have a manifests array")
            }
            return ManifestDocument(
                mediaType: mediaType, blobs: [], manifests: children.map(\.digest),
                subject: raw.subject?.digest, artifactType: raw.artifactType, annotations: raw.annotations
            )
        }
        guard raw.manifests == nil else {
            throw RegistryError(.manifestInvalid, "an image manifest cannot have manifests (it would read as an index too)")
        }
        guard let config = raw.config else {
            throw RegistryError(.manifestInvalid, "an image manifest must have a config descriptor")
        }
        guard let layers = raw.layers ?? (mediaType == MediaType.ociManifest && raw.artifactType != nil ? [] : nil)
        else {
            throw RegistryError(.manifestInvalid, "an image manifest must have a layers array")
        }
        let distributable = layers.filter { !MediaType.isNonDistributable($0.mediaType) }
        var sizes: [String: Int64] = [:]
        for descriptor in [config] + distributable {
            if let earlier = sizes.updateValue(descriptor.size, forKey: descriptor.digest.description), earlier != descriptor.size {
                throw RegistryError(
                    .manifestInvalid, "blob \(descriptor.digest) is listed with two sizes (\(earlier) and \(descriptor.size))",
                    detail: ["digest": descriptor.digest.description]
                )
            }
        }
        return ManifestDocument(
            mediaType: mediaType, blobs: [config.digest] + distributable.map(\.digest), manifests: [],
            subject: raw.subject?.digest, artifactType: raw.artifactType ?? config.mediaType,
            annotations: raw.annotations, config: config.digest, layers: distributable, declaredSizes: sizes
        )
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context): context.debugDescription
        case DecodingError.keyNotFound(let key, _): "missing field \(key.stringValue)"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        default: "unreadable"
        }
    }
}

/// The union of the fields of the four manifest shapes; unknown fields are ignored.
private struct RawManifest: Decodable {
    var schemaVersion: Int?
    var mediaType: String?
    var artifactType: String?
    var config: Descriptor?
    var layers: [Descriptor]?
    var manifests: [Descriptor]?
    var subject: Descriptor?
    var annotations: [String: String]?
}
