import Contracts
import Foundation
import Testing

/// The one error catalog: every code has its status there, renders as a code of the OCI spec (or
/// Distribution's two additions), and survives the internal API's JSON unchanged.
@Suite struct ErrorCatalogTests {
    /// The distribution spec's error codes plus `UNKNOWN` and `UNAVAILABLE` (CNCF Distribution).
    static let ociCodes: Set<String> = [
        "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED",
        "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS", "UNKNOWN", "UNAVAILABLE",
    ]

    @Test func everyCodeRendersAsAnOCICodeWithAnErrorStatus() {
        for code in RegistryError.Code.allCases {
            #expect(Self.ociCodes.contains(code.name), "\(code)")
            #expect((400..<600).contains(code.status), "\(code)")
            #expect(RegistryError(code).status == code.status)
        }
        #expect(Set(RegistryError.Code.allCases.map(\.name)) == Self.ociCodes)
    }

    @Test func statusesTheRegistryAnswersBeyondTheSpecsPairs() {
        #expect(RegistryError.rangeNotSatisfiable("x", offset: 3).status == 416)
        #expect(RegistryError.rangeNotSatisfiable("x", offset: 3).code.name == "BLOB_UPLOAD_INVALID")
        #expect(RegistryError.tagImmutable(repository: RepositoryName("a/b")!, tag: "1", current: Digest("sha256:" + String(repeating: "0", count: 64))!).status == 409)
        #expect(RegistryError.tagImmutableDelete(repository: RepositoryName("a/b")!, tag: "1").status == 405)
        #expect(RegistryError(.tooLarge).code.name == "SIZE_INVALID" && RegistryError(.tooLarge).status == 413)
    }

    /// Framework statuses map onto the catalog (one mapping for public and internal answers).
    @Test func frameworkStatusesMapOntoTheCatalog() {
        #expect(RegistryError(status: 404, message: nil).code == .routeUnknown)
        #expect(RegistryError(status: 405, message: nil).code == .unsupported)
        #expect(RegistryError(status: 413, message: nil).code == .tooLarge)
        #expect(RegistryError(status: 408, message: "timeout").code == .requestInvalid)
        #expect(RegistryError(status: 500, message: nil).code == .unknown)
        #expect(RegistryError(status: 404, message: nil).message == RegistryError.Code.routeUnknown.defaultMessage)
    }

    /// Services of another version (a rolling upgrade) read and send `code` as the OCI code with
    /// its `status`.
    @Test func theInternalJSONSpeaksTheOldFormToo() throws {
        let old = #"{"code":"BLOB_UPLOAD_INVALID","status":416,"message":"chunk starts at 5","detail":{"offset":"0"}}"#
        let decoded = try JSONDecoder().decode(RegistryError.self, from: Data(old.utf8))
        #expect(decoded.code == .rangeNotSatisfiable && decoded.status == 416 && decoded.detail == ["offset": "0"])
        let denied = try JSONDecoder().decode(RegistryError.self, from: Data(#"{"code":"DENIED","status":409,"message":"m"}"#.utf8))
        #expect(denied.code == .conflict)
        let plain = try JSONDecoder().decode(RegistryError.self, from: Data(#"{"code":"MANIFEST_UNKNOWN","status":404,"message":"m"}"#.utf8))
        #expect(plain.code == .manifestUnknown)
        let sent = try JSONSerialization.jsonObject(with: JSONEncoder().encode(RegistryError(.uploadBusy))) as? [String: Any]
        #expect(sent?["code"] as? String == "BLOB_UPLOAD_INVALID" && sent?["status"] as? Int == 409)
    }

    @Test func theInternalJSONKeepsCodeAndStatus() throws {
        for code in RegistryError.Code.allCases {
            let error = RegistryError(code, "message", detail: ["k": "v"])
            let decoded = try JSONDecoder().decode(RegistryError.self, from: try JSONEncoder().encode(error))
            #expect(decoded == error && decoded.status == error.status)
        }
    }
}
