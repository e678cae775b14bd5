import Contracts
import Foundation
import Testing

/// The tag shape the gateway encodes and the CLI decodes.
@Suite struct TagListingTests {
    /// A tag without a recorded pusher (or from an older server, without this registry's fields)
    /// decodes: the CLI's own copy of the shape required `created_by` and failed on such tags.
    @Test func aTagWithoutPusherOrExtrasDecodes() throws {
        let tags = try JSONDecoder().decode([TagListing].self, from: Data(#"[{"name":"1.0","created":"2026-12-02T10:00:00.000Z"}]"#.utf8))
        #expect(tags == [TagListing(name: "1.0", created: "2026-12-02T10:00:00.000Z")])
    }

    /// The wire names are the original's (`created_by`) and snake case for the additions.
    @Test func encodesTheAPIsFieldNames() throws {
        let tag = TagListing(
            name: "1.0", created: "c", createdBy: "u", image: "sha256:a", manifestDigest: "sha256:b", mediaType: "m",
            totalSize: 3, immutable: true
        )
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(tag)) as? [String: Any])
        #expect(Set(object.keys) == ["name", "created", "created_by", "image", "manifest_digest", "media_type", "total_size", "immutable"])
        #expect(try JSONDecoder().decode(TagListing.self, from: JSONEncoder().encode(tag)) == tag)
    }
}
