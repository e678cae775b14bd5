import Contracts
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import PierOneApp
import Runtime
import Testing

/// Pier One's promise: a pushed tag never changes under you.
@Suite struct TagImmutabilityTests {
    @Test(arguments: Backend.allCases)
    func immutableTagRefusesADifferentManifest(_ backend: Backend) async throws {
        try await RegistryHarness.withRegistry(backend) { registry in
            let first = try await registry.pushImage(to: "team/app", reference: "1.0", layers: ["first"])
            // The identical re-push (a retry, a multi-arch push) succeeds.
            try await registry.pushImage(to: "team/app", reference: "1.0", layers: ["first"])
            let second = try await registry.pushImage(
                to: "team/app", reference: "1.0", layers: ["second"], expect: .conflict
            )
            #expect(Registry.errorCode(second.response) == "DENIED")
            #expect(String(buffer: second.response.body).contains("team/app:1.0 is immutable"))
            let served = try await registry.request(.get, "/v2/team/app/manifests/1.0")
            #expect(served.body == first.bytes)
            // The refused manifest was not stored either.
            #expect(try await registry.request(.head, "/v2/team/app/manifests/\(second.digest)").status == .notFound)
        }
    }

    @Test func snapshotTagsMove() async throws {
        try await RegistryHarness.withRegistry { registry in
            try await registry.pushImage(to: "team/app", reference: "1.0-SNAPSHOT", layers: ["first"])
            let second = try await registry.pushImage(to: "team/app", reference: "1.0-SNAPSHOT", layers: ["second"])
            #expect(try await registry.request(.get, "/v2/team/app/manifests/1.0-SNAPSHOT").body == second.bytes)
        }
    }

    @Test func mutableTagsSettingAndPolicyRules() async throws {
        try await RegistryHarness.withRegistry(configure: { configuration in
            configuration.tagPolicy = TagPolicy(
                rules: [TagPolicy.Rule(repositories: [Glob("sandbox/**")], immutable: false)],
                mutableTags: TagPolicy.parsePatterns("dev-*")
            )
        }) { registry in
            try await registry.pushImage(to: "sandbox/app", reference: "1.0", layers: ["a"])
            try await registry.pushImage(to: "sandbox/app", reference: "1.0", layers: ["b"])
            try await registry.pushImage(to: "team/app", reference: "dev-1", layers: ["a"])
            try await registry.pushImage(to: "team/app", reference: "dev-1", layers: ["b"])
            try await registry.pushImage(to: "team/app", reference: "1.0-SNAPSHOT", layers: ["a"])
            try await registry.pushImage(to: "team/app", reference: "1.0-SNAPSHOT", layers: ["b"], expect: .conflict)
        }
    }

    @Test(arguments: Backend.allCases)
    func latestIsTheNewestTagAndCannotBePushed(_ backend: Backend) async throws {
        try await RegistryHarness.withRegistry(backend) { registry in
            let refused = try await registry.pushImage(to: "team/app", reference: "latest", layers: ["a"], expect: .conflict)
            #expect(String(buffer: refused.response.body).contains("LATEST_TAG_ALIAS"))
            #expect(try await registry.request(.get, "/v2/team/app/manifests/latest").status == .notFound)
            try await registry.pushImage(to: "team/app", reference: "1.0", layers: ["a"])
            try await Task.sleep(for: .milliseconds(5))
            let newest = try await registry.pushImage(to: "team/app", reference: "0.9", layers: ["b"])
            let latest = try await registry.request(.get, "/v2/team/app/manifests/latest")
            #expect(latest.body == newest.bytes)
            #expect(latest.headers[.dockerContentDigest] == newest.digest.description)
        }
    }

    @Test func latestIsOrdinaryWhenTheAliasIsOff() async throws {
        try await RegistryHarness.withRegistry(configure: { $0.latestIsAlias = false }) { registry in
            let pushed = try await registry.pushImage(to: "team/app", reference: "latest", layers: ["a"])
            try await registry.pushImage(to: "team/app", reference: "2.0", layers: ["b"])
            #expect(try await registry.request(.get, "/v2/team/app/manifests/latest").body == pushed.bytes)
            // With the default policy an ordinary latest is immutable like any tag.
            try await registry.pushImage(to: "team/app", reference: "latest", layers: ["c"], expect: .conflict)
        }
    }
}
