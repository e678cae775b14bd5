import Contracts
import Foundation
import Testing

/// The retention rules as pure decisions: which tags of a repository a policy deletes, and why.
struct RetentionPolicyTests {
    static let repository = RepositoryName("team/app")!
    static let hour: Int64 = 3_600_000
    static let now: Int64 = 1_800_000_000_000

    static func digest(_ n: Int) -> Digest {
        Digest(algorithm: .sha256, hex: String(repeating: String(n % 10), count: 64))!
    }

    /// Tags pushed one hour apart, `names[0]` the oldest.
    static func tags(_ names: [String], immutable: Set<String> = [], pulled: [String: Int64] = [:]) -> [RetentionPolicy.TagFacts] {
        names.enumerated().map { index, name in
            RetentionPolicy.TagFacts(
                name: name, digest: self.digest(index), pushedMillis: now - Int64(names.count - index) * hour,
                pulledMillis: pulled[name], immutable: immutable.contains(name)
            )
        }
    }

    static func policy(_ json: String) throws -> RetentionPolicy {
        try JSONDecoder().decode(RetentionPolicy.self, from: Data(json.utf8))
    }

    @Test func keepLastByPushTimeDeletesTheOldest() throws {
        let policy = try Self.policy(#"{"rules":[{"name":"snapshots","repositories":["team/*"],"tags":["*-SNAPSHOT"],"keepLast":2}]}"#)
        let tags = Self.tags(["1-SNAPSHOT", "2-SNAPSHOT", "1.0", "3-SNAPSHOT", "4-SNAPSHOT"])
        let expiries = policy.expiries(in: Self.repository, tags: tags, now: Self.now)
        #expect(Set(expiries.map(\.tag.name)) == ["1-SNAPSHOT", "2-SNAPSHOT"])
        #expect(expiries.allSatisfy { $0.rule == "snapshots" && $0.reason.contains("newest 2") })
        // Another repository pattern: nothing.
        #expect(policy.expiries(in: RepositoryName("other/app")!, tags: tags, now: Self.now).isEmpty)
    }

    @Test func semverOrderKeepsTheHighestVersions() throws {
        let policy = try Self.policy(
            #"{"rules":[{"repositories":["**"],"tags":["*"],"keepLast":2,"order":"semver"}]}"#
        )
        // Pushed in this order: a patch of an old line last.
        let tags = Self.tags(["v1.10.0", "1.9.2", "2.0.0-rc.1", "2.0.0", "1.10.1", "nightly"])
        let deleted = Set(policy.expiries(in: Self.repository, tags: tags, now: Self.now).map(\.tag.name))
        // Kept: 2.0.0 and 2.0.0-rc.1, both above 1.10.1 although it was pushed last.
        #expect(deleted == ["v1.10.0", "1.9.2", "1.10.1", "nightly"])
        #expect(SemanticVersion("1.10.0")! > SemanticVersion("1.9.2")!)
        #expect(SemanticVersion("2.0.0-rc.1")! < SemanticVersion("2.0.0")!)
        #expect(SemanticVersion("1.0.0-alpha.2")! < SemanticVersion("1.0.0-alpha.10")!)
        #expect(SemanticVersion("1.0.0-alpha")! < SemanticVersion("1.0.0-alpha.1")!)
        #expect(SemanticVersion("v2") == SemanticVersion("2.0.0"))
        for notAVersion in ["latest", "1..2", "1.2.3.4", "1.2.3-", "99999999999999999999.0.0", "١.٢.٣"] {
            #expect(SemanticVersion(notAVersion) == nil, "\(notAVersion)")
        }
    }

    @Test func everyConditionOfARuleMustHold() throws {
        let policy = try Self.policy(
            #"{"rules":[{"name":"old prs","repositories":["**"],"tags":["pr-*"],"keepLast":1,"olderThan":"150m"}]}"#
        )
        // pr-1 3 h old, pr-2 2 h, pr-3 1 h: beyond the newest 1 are pr-1 and pr-2, older than 150 min only pr-1.
        let expiries = policy.expiries(in: Self.repository, tags: Self.tags(["pr-1", "pr-2", "pr-3"]), now: Self.now)
        #expect(expiries.map(\.tag.name) == ["pr-1"])
        #expect(expiries[0].reason.contains("older than 2h 30m"), "\(expiries[0].reason)")
    }

    @Test func notPulledForCountsThePushAndTheLastPull() throws {
        let policy = try Self.policy(#"{"rules":[{"repositories":["**"],"tags":["*"],"notPulledFor":5400}]}"#)
        // a and b pushed 3 h and 2 h ago; a pulled 10 min ago; c pushed 1 h ago, never pulled.
        let tags = Self.tags(["a", "b", "c"], pulled: ["a": Self.now - 600_000])
        #expect(policy.expiries(in: Self.repository, tags: tags, now: Self.now).map(\.tag.name) == ["b"])
    }

    @Test func protectedAndImmutableTagsStay() throws {
        let policy = try Self.policy(
            #"""
            {"rules":[{"name":"all","repositories":["**"],"tags":["*"],"keepLast":0},
                      {"name":"releases","repositories":["**"],"tags":["v*"],"keepLast":1,"immutable":true}],
             "protected":[{"repositories":["team/*"],"tags":["prod-*"]}]}
            """#
        )
        let tags = Self.tags(["prod-1", "v1", "v2", "dev"], immutable: ["v1", "v2"])
        let expiries = policy.expiries(in: Self.repository, tags: tags, now: Self.now)
        // "all" takes dev (not the immutable v1/v2, not the protected prod-1); "releases" takes v1.
        #expect(Set(expiries.map { "\($0.rule):\($0.tag.name)" }) == ["all:dev", "releases:v1"])
    }

    @Test func mistakesInThePolicyAreRefused() {
        for json in [
            #"{"rules":[{"repositories":["**"],"tags":["*"],"keeplast":3}]}"#,
            #"{"rules":[{"repositories":["**"],"tags":["*"]}]}"#,
            #"{"rules":[{"repositories":["**"],"untaggedFor":"7d","tags":["*"]}]}"#,
            #"{"rules":[{"repositories":["**"],"tags":["*"],"keepLast":-1}]}"#,
            #"{"rules":[{"repositories":["**"],"tags":["*"],"olderThan":"7w"}]}"#,
            #"{"rules":[{"repositories":["**"],"tags":["*"],"olderThan":"99999999999999999d"}]}"#,
            #"{"rules":[{"repositories":["**"],"tags":["*"],"olderThan":-5}]}"#,
            #"{"rules":[],"protect":[]}"#,
            #"{"rules":[{"name":"a","repositories":["**"],"untaggedFor":1},{"name":"a","repositories":["**"],"untaggedFor":2}]}"#,
            #"{"rules":[{"repositories":["**"],"untaggedFor":1},{"name":"rule 1","repositories":["**"],"untaggedFor":2}]}"#,
            "{\"rules\":[" + Array(repeating: #"{"repositories":["**"],"untaggedFor":1}"#, count: 1001).joined(separator: ",") + "]}",
        ] {
            #expect(throws: DecodingError.self, "\(json)") { try Self.policy(json) }
        }
    }

    @Test func untaggedRulesAndNames() throws {
        let policy = try Self.policy(
            #"{"rules":[{"repositories":["team/*"],"untaggedFor":"7d"},{"name":"short","repositories":["**"],"untaggedFor":"1h"}]}"#
        )
        #expect(policy.rules.map(\.name) == ["rule 1", "short"])
        #expect(policy.untaggedRules(of: Self.repository).map(\.untaggedFor) == [3600, 7 * 86400])
        #expect(policy.applies(to: RepositoryName("x/y")!))
    }
}
