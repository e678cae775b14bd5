/// Who is calling, as far as the gateway could establish.
package enum Identity: Sendable, Equatable {
    /// No credentials.
    case anonymous
    /// A valid OAuth2 token (tokeninfo answered 2xx). `realm` is `/employees` or `/services`.
    case oauth(OAuthUser)
    /// A verified EC2 instance identity document of this AWS account.
    case instance(accountID: String)
    /// A registry token from `/v2/token`: exactly what it grants.
    case token(subject: String, access: [TokenScope])
    /// Authentication is switched off (no `HTTP_TOKENINFO_URL`): everything is allowed.
    case unrestricted

    /// The name to record for pushes and deletes.
    package var uid: String {
        switch self {
        case .anonymous: "anonymous"
        case .oauth(let user): user.uid
        case .instance(let accountID): "aws:\(accountID)"
        case .token(let subject, _): subject
        case .unrestricted: "anonymous"
        }
    }
}

/// What tokeninfo says about a token.
package struct OAuthUser: Sendable, Equatable {
    package var uid: String
    package var realm: String
    package var scopes: Set<String>

    package init(uid: String, realm: String, scopes: Set<String>) {
        self.uid = uid
        self.realm = realm
        self.scopes = scopes
    }

    package var isService: Bool { self.realm == "/services" }
}
