import Contracts
import Testing

@Suite struct NameTests {
    @Test(arguments: ["team/app", "team/group/app", "a0/b-c", "t.e_a__m/x---y", "team/app.v2"])
    func acceptsValidRepositoryNames(_ name: String) {
        #expect(RepositoryName(name)?.value == name)
    }

    @Test(arguments: [
        "app", "Team/app", "team//app", "team/app/", "/team/app", "team/-app", "team/app-", "team/a___b",
        "team/a..b", "team/ap p", "team/../app", "team/%2e%2e",
    ])
    func rejectsInvalidRepositoryNames(_ name: String) {
        #expect(RepositoryName(name) == nil)
    }

    @Test func rejectsOverlongNames() {
        #expect(RepositoryName("team/" + String(repeating: "a", count: 251)) == nil)
        #expect(RepositoryName("team/" + String(repeating: "a", count: 250)) != nil)
    }

    @Test func teamIsTheFirstComponent() {
        let name = RepositoryName("team/group/app")
        #expect(name?.team == "team")
        #expect(name?.artifact == "group/app")
    }

    @Test(arguments: ["1.0", "latest", "_x", "A-b.C_d", String(repeating: "a", count: 128)])
    func acceptsValidTags(_ tag: String) {
        #expect(Tag(tag) != nil)
    }

    @Test(arguments: ["", ".x", "-x", "a/b", "a:b", "a b", String(repeating: "a", count: 129)])
    func rejectsInvalidTags(_ tag: String) {
        #expect(Tag(tag) == nil)
    }

    @Test func referenceIsDigestWhenItHasAColon() {
        let digest = "sha256:" + String(repeating: "b", count: 64)
        #expect(Reference(digest) == .digest(Digest(digest)!))
        #expect(Reference("1.0") == .tag(Tag("1.0")!))
        #expect(Reference("sha256:short") == nil)
    }

    @Test func uploadIDsAreCanonicalUUIDsOnly() {
        #expect(UploadID("0f8fad5b-d9cb-469f-a165-70867728950e") != nil)
        #expect(UploadID("0F8FAD5B-D9CB-469F-A165-70867728950E") == nil)
        #expect(UploadID("../../etc/passwd") == nil)
        #expect(UploadID("0f8fad5b-d9cb-469f-a165-70867728950") == nil)
    }
}
