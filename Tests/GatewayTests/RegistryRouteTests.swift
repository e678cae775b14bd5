import Contracts
import Testing

@testable import Gateway

@Suite struct RegistryRouteTests {
    let name = RepositoryName("team/app")!

    @Test func parsesEveryResource() throws {
        #expect(try RegistryRoute(path: "/v2/") == .base)
        #expect(try RegistryRoute(path: "/v2") == .base)
        #expect(try RegistryRoute(path: "/v2/_catalog") == .catalog)
        #expect(try RegistryRoute(path: "/v2/team/app/tags/list") == .tags(self.name))
        #expect(try RegistryRoute(path: "/v2/team/app/manifests/1.0") == .manifest(self.name, reference: "1.0"))
        #expect(try RegistryRoute(path: "/v2/team/app/blobs/sha256:x") == .blob(self.name, digest: "sha256:x"))
        #expect(try RegistryRoute(path: "/v2/team/app/blobs/uploads/") == .uploads(self.name))
        #expect(try RegistryRoute(path: "/v2/team/app/blobs/uploads") == .uploads(self.name))
        #expect(try RegistryRoute(path: "/v2/team/app/blobs/uploads/abc") == .upload(self.name, id: "abc"))
        #expect(try RegistryRoute(path: "/v2/team/app/referrers/sha256:x") == .referrers(self.name, digest: "sha256:x"))
    }

    @Test func namesMayContainKeywords() throws {
        let name = RepositoryName("team/manifests/blobs")!
        #expect(try RegistryRoute(path: "/v2/team/manifests/blobs/manifests/1") == .manifest(name, reference: "1"))
        #expect(try RegistryRoute(path: "/v2/team/manifests/blobs/tags/list") == .tags(name))
    }

    @Test func invalidNamesAreNameInvalid() {
        for path in ["/v2/Team/app/manifests/1", "/v2/app/manifests/1", "/v2/team//app/tags/list"] {
            do {
                _ = try RegistryRoute(path: path)
                Issue.record("\(path) parsed")
            } catch {
                #expect(error.code == .nameInvalid)
            }
        }
    }

    @Test func otherPathsAreNoRoute() throws {
        #expect(try RegistryRoute(path: "/v2/team/app") == nil)
        #expect(try RegistryRoute(path: "/v3/team/app/tags/list") == nil)
        #expect(try RegistryRoute(path: "/v2x") == nil)
    }
}
