/// Retention rules (`RETENTION_POLICY_FILE`, docs/storage.md): which tags and untagged manifests
/// the registry deletes by itself. Pure: the enforcer reads the tags, asks `decide`, and deletes
/// what it answers, each deletion conditional on the tag still naming what was decided on.
///
/// ```json
/// {
///   "rules": [
///     {"name": "snapshots", "repositories": ["**"], "tags": ["*-SNAPSHOT"], "keepLast": 10},
///     {"name": "releases", "repositories": ["team/*"], "tags": ["v*"], "keepLast": 50, "order": "semver",
///      "immutable": true},
///     {"name": "pull requests", "repositories": ["**"], "tags": ["pr-*"], "olderThan": "14d"},
///     {"name": "unused", "repositories": ["**"], "tags": ["*"], "notPulledFor": "180d"},
///     {"name": "untagged", "repositories": ["**"], "untaggedFor": "7d"}
///   ],
///   "protected": [{"repositories": ["**"], "tags": ["latest", "prod-*"]}]
/// }
/// ```
///
/// A tag rule deletes a tag that matches `tags` when every condition it states holds: beyond the
/// newest `keepLast` of its matching tags (by push time, or by semantic version), pushed longer
/// than `olderThan` ago, not pulled (nor pushed) for `notPulledFor`. Protected tags are never
/// deleted; immutable tags (`TAG_POLICY_FILE`) only by a rule with `"immutable": true`. A manifest
/// a deleted tag leaves untagged, in no index and of no subject still there, is deleted with it.
/// An `untaggedFor` rule deletes such manifests that were pushed longer ago.
package struct RetentionPolicy: Sendable, Equatable, Codable {
    package enum Order: String, Sendable, Equatable, Codable {
        /// Newest push first.
        case pushed
        /// Highest semantic version first (`1.10.0` above `1.9.2`; a leading `v` is allowed);
        /// tags that are no version come last, newest push first.
        case semver
    }

    package struct Rule: Sendable, Equatable, Codable {
        /// Named in the logs, the notifications and the dry run; `rule <n>` when absent.
        package var name: String
        package var repositories: [Glob]
        /// Tag patterns; absent for an `untaggedFor` rule.
        package var tags: [Glob]?
        package var keepLast: Int?
        package var order: Order
        /// Seconds.
        package var olderThan: Int64?
        package var notPulledFor: Int64?
        package var untaggedFor: Int64?
        /// Whether the rule deletes immutable tags too.
        package var immutable: Bool

        package init(
            name: String, repositories: [Glob], tags: [Glob]? = nil, keepLast: Int? = nil, order: Order = .pushed,
            olderThan: Int64? = nil, notPulledFor: Int64? = nil, untaggedFor: Int64? = nil, immutable: Bool = false
        ) {
            self.name = name
            self.repositories = repositories
            self.tags = tags
            self.keepLast = keepLast
            self.order = order
            self.olderThan = olderThan
            self.notPulledFor = notPulledFor
            self.untaggedFor = untaggedFor
            self.immutable = immutable
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, repositories, tags, keepLast, order, olderThan, notPulledFor, untaggedFor, immutable
        }

        package init(from decoder: any Decoder) throws {
            try RetentionPolicy.refuseUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.name = try container.decodeIfPresent(String.self, forKey: .name) ?? ""
            self.repositories = try container.decode([Glob].self, forKey: .repositories)
            self.tags = try container.decodeIfPresent([Glob].self, forKey: .tags)
            self.keepLast = try container.decodeIfPresent(Int.self, forKey: .keepLast)
            self.order = try container.decodeIfPresent(Order.self, forKey: .order) ?? .pushed
            func age(_ key: CodingKeys) throws -> Int64? {
                if let seconds = try? container.decodeIfPresent(Int64.self, forKey: key) {
                    guard seconds >= 0, seconds <= RetentionPolicy.longestAge else {
                        throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "out of range")
                    }
                    return seconds
                }
                guard let text = try container.decodeIfPresent(String.self, forKey: key) else { return nil }
                guard let seconds = DurationText.seconds(text, maximum: RetentionPolicy.longestAge) else {
                    throw DecodingError.dataCorruptedError(
                        forKey: key, in: container,
                        debugDescription: "\"\(text)\" is not a duration (seconds, or a number with s, m, h or d, e.g. 30d)"
                    )
                }
                return seconds
            }
            self.olderThan = try age(.olderThan)
            self.notPulledFor = try age(.notPulledFor)
            self.untaggedFor = try age(.untaggedFor)
            self.immutable = try container.decodeIfPresent(Bool.self, forKey: .immutable) ?? false
            if let keepLast, keepLast < 0 || keepLast > 1_000_000 {
                throw DecodingError.dataCorruptedError(
                    forKey: .keepLast, in: container, debugDescription: "keepLast must be from 0 to 1000000"
                )
            }
            let tagConditions = self.keepLast != nil || self.olderThan != nil || self.notPulledFor != nil
            switch (self.tags, tagConditions, self.untaggedFor) {
            case (.some, true, nil), (nil, false, .some):
                break
            default:
                throw DecodingError.dataCorrupted(.init(
                    codingPath: decoder.codingPath,
                    debugDescription: "a rule has tags with keepLast, olderThan or notPulledFor, or untaggedFor without tags"
                ))
            }
        }
    }

    package struct Protection: Sendable, Equatable, Codable {
        package var repositories: [Glob]
        package var tags: [Glob]

        package init(repositories: [Glob], tags: [Glob]) {
            self.repositories = repositories
            self.tags = tags
        }
    }

    package var rules: [Rule]
    package var protected: [Protection]

    /// Ten years, in seconds: the longest age a rule may name.
    static let longestAge: Int64 = 10 * 366 * 86400

    package init(rules: [Rule] = [], protected: [Protection] = []) {
        self.rules = rules
        self.protected = protected
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case rules, protected
    }

    package init(from decoder: any Decoder) throws {
        try Self.refuseUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.rules = try container.decodeIfPresent([Rule].self, forKey: .rules) ?? []
        self.protected = try container.decodeIfPresent([Protection].self, forKey: .protected) ?? []
        guard self.rules.count <= 1000, self.protected.count <= 1000 else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "at most 1000 rules and 1000 protections"))
        }
        for index in self.rules.indices where self.rules[index].name.isEmpty {
            self.rules[index].name = "rule \(index + 1)"
        }
        var names = Set<String>()
        for rule in self.rules where !names.insert(rule.name).inserted {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "two rules are named \"\(rule.name)\""))
        }
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// A misspelt condition (`keeplast`) must not silently make a rule delete more.
    static func refuseUnknownKeys(_ decoder: any Decoder, known: [String]) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        if let unknown = container.allKeys.first(where: { !known.contains($0.stringValue) }) {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath + [unknown],
                debugDescription: "unknown key \(unknown.stringValue) (known: \(known.joined(separator: ", ")))"
            ))
        }
    }

    /// Whether any rule applies to `repository`.
    package func applies(to repository: RepositoryName) -> Bool {
        self.rules.contains { $0.repositories.contains { $0.matches(repository.value) } }
    }

    /// The `untaggedFor` rules of `repository`, shortest first: the first names the deletion.
    package func untaggedRules(of repository: RepositoryName) -> [Rule] {
        self.rules.filter { $0.untaggedFor != nil && $0.repositories.contains { $0.matches(repository.value) } }
            .sorted { $0.untaggedFor! < $1.untaggedFor! }
    }

    private func isProtected(_ tag: String, in repository: RepositoryName) -> Bool {
        self.protected.contains { protection in
            protection.repositories.contains { $0.matches(repository.value) } && protection.tags.contains { $0.matches(tag) }
        }
    }

    /// A tag as retention sees it.
    package struct TagFacts: Sendable, Equatable {
        package var name: String
        package var digest: Digest
        /// When the tag got its manifest (ms since 1970).
        package var pushedMillis: Int64
        /// When it was last pulled, if ever since pulls are recorded.
        package var pulledMillis: Int64?
        package var immutable: Bool

        package init(name: String, digest: Digest, pushedMillis: Int64, pulledMillis: Int64?, immutable: Bool) {
            self.name = name
            self.digest = digest
            self.pushedMillis = pushedMillis
            self.pulledMillis = pulledMillis
            self.immutable = immutable
        }
    }

    /// A tag to delete and why.
    package struct Expiry: Sendable, Equatable {
        package var tag: TagFacts
        package var rule: String
        package var reason: String
        /// Whether the rule that selected it deletes immutable tags (`"immutable": true`).
        package var immutable: Bool
    }

    /// The tags of `repository` the rules delete at `now` (ms since 1970), each once, by the first
    /// rule (in file order) that selects it.
    package func expiries(in repository: RepositoryName, tags: [TagFacts], now: Int64) -> [Expiry] {
        var decided: [String: Expiry] = [:]
        var order: [String] = []
        for rule in self.rules where rule.tags != nil && rule.repositories.contains(where: { $0.matches(repository.value) }) {
            let patterns = rule.tags ?? []
            let matching = tags.filter { tag in patterns.contains { $0.matches(tag.name) } }
            let ranked = Self.rank(matching, by: rule.order)
            for (position, tag) in ranked.enumerated() where decided[tag.name] == nil {
                guard !self.isProtected(tag.name, in: repository), !tag.immutable || rule.immutable else { continue }
                var reasons: [String] = []
                if let keep = rule.keepLast {
                    guard position >= keep else { continue }
                    reasons.append("beyond the newest \(keep) by \(rule.order == .semver ? "version" : "push time")")
                }
                if let age = rule.olderThan {
                    guard tag.pushedMillis < now - age * 1000 else { continue }
                    reasons.append("pushed \(Self.days(now - tag.pushedMillis)) ago (older than \(Self.days(age * 1000)))")
                }
                if let age = rule.notPulledFor {
                    let used = max(tag.pulledMillis ?? tag.pushedMillis, tag.pushedMillis)
                    guard used < now - age * 1000 else { continue }
                    reasons.append("not pulled for \(Self.days(now - used)) (limit \(Self.days(age * 1000)))")
                }
                decided[tag.name] = Expiry(
                    tag: tag, rule: rule.name, reason: "\(rule.name): " + reasons.joined(separator: ", "), immutable: rule.immutable
                )
                order.append(tag.name)
            }
        }
        return order.compactMap { decided[$0] }
    }

    /// Newest first, by push time or by version.
    static func rank(_ tags: [TagFacts], by order: Order) -> [TagFacts] {
        let byPush = tags.sorted { ($0.pushedMillis, $0.name) > ($1.pushedMillis, $1.name) }
        guard order == .semver else { return byPush }
        let versions = byPush.map { (tag: $0, version: SemanticVersion($0.name)) }
        let versioned = versions.filter { $0.version != nil }.sorted { $0.version! > $1.version! }.map(\.tag)
        return versioned + versions.filter { $0.version == nil }.map(\.tag)
    }

    /// A span as people read it: `3d 4h`, `5h 2m`, `40s`.
    package static func days(_ millis: Int64) -> String {
        let seconds = max(0, millis / 1000)
        if seconds >= 86400 { return "\(seconds / 86400)d \(seconds % 86400 / 3600)h" }
        if seconds >= 3600 { return "\(seconds / 3600)h \(seconds % 3600 / 60)m" }
        if seconds >= 60 { return "\(seconds / 60)m \(seconds % 60)s" }
        return "\(seconds)s"
    }
}
