#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Which tags may be moved once pushed.
///
/// Rules are tried in order; the first whose `repositories` pattern matches the repository
/// decides. A rule says whether tags are immutable by default and lists the tag patterns that are
/// the exception. When no rule matches, the default rule applies: every tag is immutable except
/// those matching `MUTABLE_TAGS` (Pier One's `*-SNAPSHOT`).
///
/// The policy file (`TAG_POLICY_FILE`) is JSON:
/// ```json
/// {"rules": [
///   {"repositories": ["sandbox/**"], "immutable": false},
///   {"repositories": ["team/**"], "immutable": true, "except": ["*-SNAPSHOT", "dev-*"]}
/// ]}
/// ```
package struct TagPolicy: Sendable, Equatable, Codable {
    /// One line of the policy.
    package struct Rule: Sendable, Equatable, Codable {
        /// Repository name patterns the rule applies to (`*` stays within a path component, `**` spans them).
        package var repositories: [Glob]
        /// Whether tags are immutable unless they match `except`.
        package var immutable: Bool
        /// Tag patterns that get the opposite of `immutable`.
        package var except: [Glob]

        package init(repositories: [Glob], immutable: Bool, except: [Glob] = []) {
            self.repositories = repositories
            self.immutable = immutable
            self.except = except
        }

        package init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.repositories = try container.decode([Glob].self, forKey: .repositories)
            self.immutable = try container.decode(Bool.self, forKey: .immutable)
            self.except = try container.decodeIfPresent([Glob].self, forKey: .except) ?? []
        }
    }

    package var rules: [Rule]
    /// Applies when no rule matches the repository.
    package var fallback: Rule

    /// The policy Pier One always had: everything immutable except `mutableTags`.
    package init(rules: [Rule] = [], mutableTags: [Glob] = [Glob("*-SNAPSHOT")]) {
        self.rules = rules
        self.fallback = Rule(repositories: [Glob("**")], immutable: true, except: mutableTags)
    }

    /// Whether `tag` in `repository`, once set, may only ever name the same manifest.
    package func isImmutable(tag: String, in repository: RepositoryName) -> Bool {
        let rule = self.rules.first { $0.repositories.contains { $0.matches(repository.value) } } ?? self.fallback
        let excepted = rule.except.contains { $0.matches(tag) }
        return rule.immutable != excepted
    }

    /// Reads the rule list of a policy file; `fallback` comes from `MUTABLE_TAGS`.
    package static func decodeRules(from json: some Collection<UInt8>) throws -> [Rule] {
        try JSONDecoder().decode(PolicyFile.self, from: Data(json)).rules
    }

    private struct PolicyFile: Decodable { var rules: [Rule] }

    /// Parses `MUTABLE_TAGS`: comma-separated patterns, blanks ignored.
    package static func parsePatterns(_ list: String) -> [Glob] {
        list.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }.map { Glob(String($0)) }
    }
}
