import Contracts
import Foundation

/// Every parser of untrusted input, as fuzz targets: libFuzzer drives them in `pierone-fuzz`
/// (`scripts/fuzz`), and `FuzzTargetTests` runs a bounded property-based pass of each in the test
/// command. A target returns normally for any input; a violated invariant is a `Violation`, and
/// a trap is a crash — both are bugs. Each crash found is kept as a regression input under
/// `Tests/FuzzCorpus/<target>/` and replayed by the tests.
package enum FuzzTargets {
    package struct Violation: Error, CustomStringConvertible {
        package var description: String
    }

    /// Target names, as `FUZZ_TARGET` and corpus folder names.
    package static let names = ["names", "ranges", "headers", "scopes", "manifest", "json", "routes", "policy", "queries"]

    package static func run(_ target: String, _ bytes: [UInt8]) throws(Violation) {
        let text = String(decoding: bytes, as: UTF8.self)
        switch target {
        case "names": try self.names(text)
        case "ranges": try self.ranges(bytes, text)
        case "headers": try self.headers(text)
        case "scopes": try self.scopes(text)
        case "manifest": try self.manifest(bytes)
        case "json": try self.json(bytes)
        case "routes": self.routes(text)
        case "policy": self.policy(bytes)
        case "queries": try self.queries(text)
        default: throw Violation(description: "no fuzz target \(target); targets: \(self.names)")
        }
    }

    static func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(Violation) {
        if !condition { throw Violation(description: message()) }
    }

    /// Repository names, tags, digests, references, upload ids: what parses prints back the same.
    static func names(_ text: String) throws(Violation) {
        if let name = RepositoryName(text) {
            try self.check(name.value == text && RepositoryName(name.value) == name, "repository name round trip: \(text)")
            try self.check(!name.team.isEmpty, "repository without a team: \(text)")
        }
        if let tag = Tag(text) {
            try self.check(tag.value == text && tag.value.utf8.count <= 128, "tag: \(text)")
        }
        if let digest = Digest(text) {
            try self.check(digest.description == text && digest.hex.utf8.count == digest.algorithm.hexLength, "digest: \(text)")
            try self.check(!digest.hex.contains("/") && !digest.hex.contains("."), "digest safe in a path: \(text)")
        }
        if let id = UploadID(text) {
            try self.check(id.value == text && id.value.utf8.count == 36, "upload id: \(text)")
        }
        _ = try? RequestParsing.reference(text)
    }

    /// `Content-Range` and `Range` against a size taken from the input: no trap, and every
    /// selected range lies inside the blob.
    static func ranges(_ bytes: [UInt8], _ text: String) throws(Violation) {
        if let chunk = ByteRanges.parseChunk(text) {
            try self.check(chunk.lowerBound >= 0 && chunk.upperBound >= chunk.lowerBound, "chunk \(text)")
        }
        let size = bytes.prefix(8).reduce(Int64(0)) { ($0 << 8 | Int64($1)) & Int64.max }
        for blobSize in [size, 0, 1, 10, Int64.max] {
            if case .partial(let range) = ByteRanges.select(text, size: blobSize) {
                try self.check(range.lowerBound >= 0 && range.upperBound < blobSize && range.lowerBound <= range.upperBound,
                               "range \(text) of \(blobSize): \(range)")
            }
        }
    }

    /// `Authorization`, `Accept` and `Content-Type`, the token form, bearer token shapes.
    static func headers(_ text: String) throws(Violation) {
        switch Credentials(authorization: text) {
        case .oauthToken(let secret), .bearer(let secret), .instanceIdentity(let secret):
            try self.check(!secret.isEmpty, "empty secret from \(text)")
        case .unrecognized, nil:
            break
        }
        let essence = MediaType.essence(text)
        try self.check(!essence.contains(";"), "essence with parameters: \(essence)")
        _ = ManifestHandlers.accepts([text], MediaType.ociManifest)
        _ = ManifestHandlers.accepts(text.split(separator: "\n").map(String.init), essence)
        _ = TokenController.formFields(text)
        if TokenInfoClient.isWellFormed(text) {
            try self.check(text.utf8.count <= TokenInfoClient.maximumTokenLength, "token length")
            try self.check(text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) != nil, "token encoding")
        }
    }

    /// Token scopes, and the access a token made of them grants.
    static func scopes(_ text: String) throws(Violation) {
        let scopes = text.split(separator: " ").compactMap(TokenScope.init)
        for scope in scopes {
            try self.check(!scope.type.isEmpty && !scope.name.isEmpty, "scope \(text)")
        }
        let identity = Identity.token(subject: "fuzz", access: scopes)
        for action in Action.allCases {
            for name in ["team/app", text] {
                _ = AccessRules().decide(identity, action, RepositoryName(name))
            }
        }
    }

    /// Manifest and index JSON: whatever is accepted is unambiguous and has no negative size.
    static func manifest(_ bytes: [UInt8]) throws(Violation) {
        for contentType in [nil, MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, "application/json"] {
            guard let document = try? ManifestDocument.parse(bytes, contentType: contentType) else { continue }
            try self.check((try? StrictJSON.check(bytes)) != nil, "accepted a manifest the strict check refuses")
            try self.check(document.declaredSizes?.values.allSatisfy { $0 >= 0 } ?? true, "negative declared size")
            try self.check(MediaType.manifests.contains(document.mediaType), "unsupported type \(document.mediaType)")
            if MediaType.indexes.contains(document.mediaType) {
                try self.check(document.blobs.isEmpty && document.layers == nil, "an index with layers")
            } else {
                try self.check(document.manifests.isEmpty, "an image manifest with children")
            }
        }
    }

    /// The strict JSON check against Foundation's parser: what it accepts, Foundation reads too.
    static func json(_ bytes: [UInt8]) throws(Violation) {
        guard (try? StrictJSON.check(bytes)) != nil else { return }
        let parsed = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        try self.check(parsed != nil, "strict JSON accepted what JSONSerialization refuses: \(String(decoding: bytes.prefix(200), as: UTF8.self))")
    }

    /// Request paths of both APIs.
    static func routes(_ text: String) {
        _ = try? RegistryRoute(path: text)
        _ = try? PierOneRoute(path: text)
    }

    /// `TAG_POLICY_FILE` contents, and decisions with the policy they give.
    static func policy(_ bytes: [UInt8]) {
        guard let rules = try? TagPolicy.decodeRules(from: bytes) else { return }
        let policy = TagPolicy(rules: rules)
        for (tag, repository) in [("1.0", RepositoryName("team/app")!), ("x-SNAPSHOT", RepositoryName("a/b/c")!)] {
            _ = policy.isImmutable(tag: tag, in: repository)
        }
        _ = TagPolicy.parsePatterns(String(decoding: bytes, as: UTF8.self))
    }

    /// `n`, `limit` and the other numbers of listing queries, the token form, the referrers filter.
    static func queries(_ text: String) throws(Violation) {
        if let n = try? RequestParsing.listingLimit(text) {
            try self.check(n >= 0 && PageRequest(limit: n, after: nil).effectiveLimit <= PageRequest.maximumLimit, "n \(text)")
        }
        if let limit = try? RequestParsing.apiLimit(text) {
            try self.check((1...PageRequest.maximumLimit).contains(limit), "limit \(text)")
        }
        _ = TokenController.formFields(text)
        // A referrers `artifactType` filter is echoed, percent-encoded, in the next page's `Link`.
        let encoded = text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)
        try self.check(encoded?.removingPercentEncoding == text, "artifactType round trip: \(text)")
    }
}
