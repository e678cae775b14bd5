import Contracts
import Testing

@testable import Gateway

@Suite struct PierOneRouteTests {
    @Test func parsesEveryResource() throws {
        #expect(try PierOneRoute(path: "/teams") == .teams)
        #expect(try PierOneRoute(path: "/teams/stups/artifacts") == .artifacts(team: "stups"))
        #expect(try PierOneRoute(path: "/teams/stups/artifacts/app/tags") == .tags(RepositoryName("stups/app")!))
        #expect(try PierOneRoute(path: "/teams/stups/artifacts/group/app/tags") == .tags(RepositoryName("stups/group/app")!))
        #expect(
            try PierOneRoute(path: "/teams/stups/artifacts/app/tags/1.0/scm-source")
                == .scmSource(RepositoryName("stups/app")!, Tag("1.0")!)
        )
        // An artifact component may itself be called "tags".
        #expect(try PierOneRoute(path: "/teams/stups/artifacts/tags/tags") == .tags(RepositoryName("stups/tags")!))
        #expect(try PierOneRoute(path: "/tags/abc123") == .imageTags(prefix: "abc123"))
        #expect(try PierOneRoute(path: "/stats") == .statistics)
        #expect(try PierOneRoute(path: "/stats/teams") == .teamStatistics)
        #expect(try PierOneRoute(path: "/stats/teams/stups") == .oneTeamStatistics(team: "stups"))
    }

    @Test func otherPathsAreNotRoutes() throws {
        for path in ["/", "/ui/", "/v2/", "/teams/stups", "/teams/stups/other", "/teams//artifacts", "/tags",
                     "/tags/a/b", "/stats/other", "/stats/teams/", "/teams/stups/artifacts/app"] {
            #expect(try PierOneRoute(path: path) == nil, "\(path)")
        }
    }

    @Test func invalidNamesAreErrors() {
        #expect(throws: RegistryError.self) { try PierOneRoute(path: "/teams/Stups/artifacts/app/tags") }
        #expect(throws: RegistryError.self) { try PierOneRoute(path: "/teams/stups/artifacts/app/tags/-bad/scm-source") }
    }

    @Test func readsNeedPullAndListingsTheCatalog() throws {
        let name = RepositoryName("stups/app")!
        #expect(try PierOneRoute(path: "/teams/stups/artifacts/app/tags")?.requirement == .access(.pull, name))
        #expect(try PierOneRoute(path: "/teams/stups/artifacts/app/tags/1/scm-source")?.requirement == .access(.pull, name))
        for path in ["/teams", "/teams/stups/artifacts", "/tags/abc", "/stats", "/stats/teams", "/stats/teams/stups"] {
            #expect(try PierOneRoute(path: path)?.requirement == .access(.pull, nil), "\(path)")
        }
    }

    @Test func imagePrefixesAreNormalised() throws {
        #expect(try PierOneAPIController.imagePrefix("ABC123") == "sha256:abc123")
        #expect(try PierOneAPIController.imagePrefix("sha256:abc") == "sha256:abc")
        #expect(try PierOneAPIController.imagePrefix("sha512:0f") == "sha512:0f")
        for bad in ["", "xyz", "sha256:", "md5:abc", "abc%", "ab cd", String(repeating: "a", count: 129)] {
            #expect(throws: RegistryError.self, "\(bad)") { try PierOneAPIController.imagePrefix(bad) }
        }
    }
}
