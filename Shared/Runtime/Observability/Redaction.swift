import Crypto
import Foundation

/// What of a configured URL may appear in logs and metric labels: scheme, host and port only.
///
/// Webhook URLs carry secrets in every other part — `user:password@`, `?token=`, and paths that
/// are themselves the secret (`https://hooks.slack.com/services/T0/B0/<secret>`) — so everything
/// after the authority becomes `/…`.
package enum Redaction {
    package static func url(_ string: String) -> String {
        guard let scheme = string.range(of: "://") else { return "…" }
        let rest = string[scheme.upperBound...]
        var authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") {
            authority = authority[authority.index(after: at)...]
        }
        let hasMore = rest.count > authority.count || rest.contains("@")
        return string[..<scheme.upperBound] + authority + (hasMore ? "/…" : "")
    }

    /// A notification sink's name (`webhook:<url>` or `sns:<topic arn>`) fit for logs and labels.
    /// Two webhooks on one host stay apart by the first 24 bits of their URL's SHA-256 (which say
    /// nothing useful about a secret of any real length).
    package static func sink(_ name: String) -> String {
        guard name.hasPrefix("webhook:") else { return name }
        let url = String(name.dropFirst("webhook:".count))
        let shown = self.url(url)
        guard shown.hasSuffix("/…") else { return "webhook:" + shown }
        let tag = DigestHasher.hex(SHA256.hash(data: Array(url.utf8)).prefix(3))
        return "webhook:" + shown + "#" + tag
    }
}
