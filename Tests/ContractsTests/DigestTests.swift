import Contracts
import Testing

@Suite struct DigestTests {
    @Test func parsesSHA256AndSHA512() {
        let sha256 = "sha256:" + String(repeating: "a", count: 64)
        let sha512 = "sha512:" + String(repeating: "0", count: 128)
        #expect(Digest(sha256)?.algorithm == .sha256)
        #expect(Digest(sha512)?.algorithm == .sha512)
        #expect(Digest(sha256)?.description == sha256)
    }

    @Test(arguments: [
        "sha256:" + String(repeating: "a", count: 63),
        "sha256:" + String(repeating: "A", count: 64),
        "sha256:" + String(repeating: "g", count: 64),
        "md5:" + String(repeating: "a", count: 32),
        "sha256" + String(repeating: "a", count: 64),
        "sha512:" + String(repeating: "a", count: 64),
        "sha256:../../" + String(repeating: "a", count: 58),
        "",
    ])
    func rejectsMalformed(_ value: String) {
        #expect(Digest(value) == nil)
    }
}
