import Contracts
import Testing

@Suite struct TagPolicyTests {
    let team = RepositoryName("team/app")!

    @Test func globMatching() {
        #expect(Glob("*-SNAPSHOT").matches("1.0-SNAPSHOT"))
        #expect(!Glob("*-SNAPSHOT").matches("1.0"))
        #expect(Glob("*").matches("anything.at-all"))
        #expect(Glob("team/*").matches("team/app"))
        #expect(!Glob("team/*").matches("team/group/app"))
        #expect(Glob("team/**").matches("team/group/app"))
        #expect(Glob("v?.*").matches("v1.2"))
        #expect(!Glob("v?.*").matches("v12.2"))
        #expect(!Glob("a*a*a*a*a*b").matches(String(repeating: "a", count: 200)))
    }

    @Test func defaultPolicyIsPierOnes() {
        let policy = TagPolicy()
        #expect(policy.isImmutable(tag: "1.0", in: self.team))
        #expect(policy.isImmutable(tag: "latest", in: self.team))
        #expect(!policy.isImmutable(tag: "1.0-SNAPSHOT", in: self.team))
    }

    @Test func starMakesEverythingMutable() {
        let policy = TagPolicy(mutableTags: TagPolicy.parsePatterns("*"))
        #expect(!policy.isImmutable(tag: "1.0", in: self.team))
    }

    @Test func mutableTagsListIsCommaSeparated() {
        let policy = TagPolicy(mutableTags: TagPolicy.parsePatterns(" dev-* , *-SNAPSHOT,"))
        #expect(!policy.isImmutable(tag: "dev-1", in: self.team))
        #expect(!policy.isImmutable(tag: "2-SNAPSHOT", in: self.team))
        #expect(policy.isImmutable(tag: "2", in: self.team))
    }

    @Test func firstMatchingRuleDecides() throws {
        let json = """
            {"rules": [
              {"repositories": ["sandbox/**"], "immutable": false, "except": ["release-*"]},
              {"repositories": ["team/*"], "immutable": true, "except": ["nightly"]}
            ]}
            """
        let policy = TagPolicy(rules: try TagPolicy.decodeRules(from: Array(json.utf8)))
        let sandbox = RepositoryName("sandbox/deep/app")!
        #expect(!policy.isImmutable(tag: "1.0", in: sandbox))
        #expect(policy.isImmutable(tag: "release-1", in: sandbox))
        #expect(!policy.isImmutable(tag: "nightly", in: self.team))
        #expect(policy.isImmutable(tag: "1.0-SNAPSHOT", in: self.team))
        // No rule matches: the MUTABLE_TAGS fallback.
        #expect(!policy.isImmutable(tag: "1.0-SNAPSHOT", in: RepositoryName("other/app")!))
    }

    @Test func malformedPolicyFileIsRejected() {
        #expect(throws: (any Error).self) {
            try TagPolicy.decodeRules(from: Array(#"{"rules": [{"repositories": "x"}]}"#.utf8))
        }
    }
}
