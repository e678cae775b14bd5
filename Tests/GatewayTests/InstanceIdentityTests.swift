import Foundation
import TestSupport
import Testing

@testable import Gateway

/// EC2 instance identity documents: only a signature by a configured certificate counts.
@Suite struct InstanceIdentityTests {
    static let account = "123456789012"

    static func verifier(_ fixture: InstanceIdentityFixture, maximumAge: TimeInterval = 3600) throws -> InstanceIdentityVerifier {
        let pem = try #require(FileManager.default.contents(atPath: fixture.awsCertificatePath))
        return try InstanceIdentityVerifier(certificatesPEM: pem, maximumAge: maximumAge)
    }

    @Test func documentSignedByTheConfiguredCertificateIsAccepted() async throws {
        let fixture = try await InstanceIdentityFixture.make()
        let signed = try await fixture.sign(InstanceIdentityFixture.document(accountID: Self.account))
        let document = try Self.verifier(fixture).verify(signed)
        #expect(document.accountId == Self.account)
        #expect(document.region == "eu-west-1")
        // With line breaks, as curl prints the metadata service's answer.
        let wrapped = stride(from: 0, to: signed.count, by: 64).map {
            String(signed.dropFirst($0).prefix(64))
        }.joined(separator: "\n")
        #expect(try Self.verifier(fixture).verify(wrapped).accountId == Self.account)
    }

    @Test func anAttackersSignatureIsRefusedEvenWithItsCertificateEmbedded() async throws {
        let fixture = try await InstanceIdentityFixture.make()
        let document = InstanceIdentityFixture.document(accountID: Self.account)
        let forged = try await fixture.sign(document, by: "attacker", embedCertificate: true)
        #expect(throws: InstanceIdentityVerifier.Failure.self) { try Self.verifier(fixture).verify(forged) }
        let bare = try await fixture.sign(document, by: "attacker")
        #expect(throws: InstanceIdentityVerifier.Failure.self) { try Self.verifier(fixture).verify(bare) }
    }

    @Test func aTamperedDocumentIsRefused() async throws {
        let fixture = try await InstanceIdentityFixture.make()
        let signed = try await fixture.sign(InstanceIdentityFixture.document(accountID: Self.account))
        var der = try #require(Data(base64Encoded: signed))
        // Change the account id inside the signed content, keeping the signature.
        let original = Data(Self.account.utf8)
        let range = try #require(der.range(of: original))
        der.replaceSubrange(range, with: Data("999999999999".utf8))
        #expect(throws: InstanceIdentityVerifier.Failure.self) {
            try Self.verifier(fixture).verify(der.base64EncodedString())
        }
        #expect(throws: InstanceIdentityVerifier.Failure.self) { try Self.verifier(fixture).verify("not base64 at all!") }
    }

    @Test func anOldDocumentIsRefused() async throws {
        let fixture = try await InstanceIdentityFixture.make()
        let old = InstanceIdentityFixture.document(accountID: Self.account, pendingTime: Date().addingTimeInterval(-7200))
        let signed = try await fixture.sign(old)
        #expect(throws: InstanceIdentityVerifier.Failure.self) { try Self.verifier(fixture, maximumAge: 3600).verify(signed) }
        #expect(try Self.verifier(fixture, maximumAge: 86_400).verify(signed).accountId == Self.account)
    }
}
