import Contracts
import Hummingbird

/// Turning URL parts into validated values, each failure a clear OCI error.
enum RequestParsing {
    static func digest(_ string: some StringProtocol) throws(RegistryError) -> Digest {
        guard let digest = Digest(string) else {
            throw RegistryError(
                .digestInvalid, "invalid digest \"\(string)\": expected sha256:<64 hex> or sha512:<128 hex>",
                detail: ["digest": String(string)]
            )
        }
        return digest
    }

    static func tag(_ string: some StringProtocol) throws(RegistryError) -> Tag {
        guard let tag = Tag(string) else {
            throw RegistryError(
                .manifestInvalid, "invalid tag \"\(string)\": tags match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}",
                detail: ["tag": String(string)]
            )
        }
        return tag
    }

    static func reference(_ string: String) throws(RegistryError) -> Reference {
        if string.contains(":") {
            return .digest(try self.digest(string))
        }
        return .tag(try self.tag(string))
    }

    static func uploadID(_ string: String) throws(RegistryError) -> UploadID {
        guard let id = UploadID(string) else {
            throw RegistryError(.blobUploadUnknown, "upload \(string) does not exist")
        }
        return id
    }

    /// `?n=&last=` of the listing endpoints.
    static func page(_ request: Request) throws(RegistryError) -> PageRequest {
        let query = request.uri.queryParameters
        return PageRequest(limit: try self.listingLimit(query["n"]), after: query["last"].map(String.init))
    }

    /// `n` of the OCI listings: a non-negative integer (the stores clamp it), nil when absent.
    static func listingLimit(_ n: (some StringProtocol)?) throws(RegistryError) -> Int? {
        guard let n else { return nil }
        guard let value = Int(n), value >= 0 else {
            throw RegistryError(.parameterInvalid, "n must be a non-negative integer", detail: ["n": String(n)])
        }
        return value
    }

    /// `limit` of the Pier One API: 1…`PageRequest.maximumLimit`, nil when absent.
    static func apiLimit(_ text: (some StringProtocol)?) throws(RegistryError) -> Int? {
        guard let text else { return nil }
        guard let value = Int(text), (1...PageRequest.maximumLimit).contains(value) else {
            throw RegistryError(
                .parameterInvalid, "limit must be an integer from 1 to \(PageRequest.maximumLimit)",
                detail: ["limit": String(text)]
            )
        }
        return value
    }

    /// What a name may start with in a listing's `?prefix=`: up to 128 of the characters names
    /// are made of (`/` only where the names have it), never empty.
    static func namePrefix(_ text: (some StringProtocol)?, allowingSlash: Bool, uppercase: Bool) throws(RegistryError) -> String? {
        guard let text else { return nil }
        let allowed = { (character: Character) -> Bool in
            character.isASCII && (character.isNumber || character.isLowercase || (uppercase && character.isUppercase)
                || "._-".contains(character) || (allowingSlash && character == "/"))
        }
        guard !text.isEmpty, text.count <= 128, text.allSatisfy(allowed) else {
            throw RegistryError(
                .parameterInvalid,
                "prefix is 1 to 128 of the characters \(uppercase ? "tag names" : "names") are made of"
                    + (allowingSlash ? "" : ", without /"),
                detail: ["prefix": String(text)]
            )
        }
        return String(text)
    }
}
