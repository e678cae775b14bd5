import Contracts
import NIOCore
import Testing

@testable import Metadata

/// The tag rules as pure functions: what a push, a tag deletion and a manifest deletion do, given
/// what the store read.
@Suite struct TagRulesTests {
    let repository = RepositoryName("team/app")!
    let old = Digest("sha256:" + String(repeating: "1", count: 64))!
    let new = Digest("sha256:" + String(repeating: "2", count: 64))!

    func put(_ tags: [String]) throws -> ManifestPut {
        let json = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#
        return ManifestPut(
            repository: self.repository, digest: self.new, bytes: ByteBuffer(string: json),
            document: try ManifestDocument.parse(Array(json.utf8), contentType: nil), tags: tags.map { Tag($0)! }, pushedBy: "ci"
        )
    }

    @Test func aNewTagIsCreatedAnUnchangedOneIsNothing() throws {
        let rules = TagRules()
        let created = try rules.move(Tag("1.0")!, for: try self.put(["1.0"]), current: nil)
        #expect(created?.action == .created && created?.previousDigest == nil && created?.pushedBy == "ci")
        #expect(try rules.move(Tag("1.0")!, for: try self.put(["1.0"]), current: self.new) == nil)
    }

    @Test func immutableTagsDoNotMoveMutableOnesDo() throws {
        let rules = TagRules()
        #expect(throws: RegistryError.tagImmutable(repository: self.repository, tag: "1.0", current: self.old)) {
            _ = try rules.move(Tag("1.0")!, for: try self.put(["1.0"]), current: self.old)
        }
        let moved = try rules.move(Tag("1.0-SNAPSHOT")!, for: try self.put(["1.0-SNAPSHOT"]), current: self.old)
        #expect(moved?.action == .moved && moved?.previousDigest == self.old.description)
    }

    @Test func latestIsAnAliasUnlessTurnedOff() throws {
        let alias = TagRules()
        #expect(throws: RegistryError.self) { try alias.checkPush([Tag("latest")!], to: self.repository) }
        #expect(throws: RegistryError.self) { try alias.checkDeletable(Tag("latest")!, in: self.repository) }
        #expect(alias.lookup(.tag(Tag("latest")!)) == .newest)
        let plain = TagRules(TagSettings(latestIsAlias: false))
        try plain.checkPush([Tag("latest")!], to: self.repository)
        try plain.checkDeletable(Tag("latest")!, in: self.repository)
        #expect(plain.lookup(.tag(Tag("latest")!)) == .tag(Tag("latest")!))
        #expect(plain.lookup(.digest(self.old)) == .digest(self.old))
    }

    @Test func deletionsRefuseImmutableTags() throws {
        let rules = TagRules()
        #expect(throws: RegistryError.tagImmutableDelete(repository: self.repository, tag: "1.0")) {
            _ = try rules.delete(Tag("1.0")!, in: self.repository, current: self.old)
        }
        #expect(try rules.delete(Tag("dev-SNAPSHOT")!, in: self.repository, current: self.old).action == .deleted)
        #expect(throws: RegistryError.self) {
            _ = try rules.deleteManifest(self.old, in: self.repository, tags: ["dev-SNAPSHOT", "2.0"])
        }
        #expect(try rules.deleteManifest(self.old, in: self.repository, tags: ["a-SNAPSHOT", "b-SNAPSHOT"]).count == 2)
    }
}
