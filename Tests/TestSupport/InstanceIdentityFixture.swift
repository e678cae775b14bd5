import Foundation

/// Signed EC2 instance identity documents for tests, made with the openssl command line: a
/// self-signed certificate stands in for AWS's, another for an attacker's.
public struct InstanceIdentityFixture: Sendable {
    public let directory: URL
    /// PEM of the certificate standing in for AWS's (what `IID_CERTIFICATES_FILE` holds).
    public var awsCertificatePath: String { self.directory.appendingPathComponent("aws.crt").path }

    public static func make() async throws -> InstanceIdentityFixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-iid-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for name in ["aws", "attacker"] {
            try await Self.openssl([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=\(name)",
                "-keyout", directory.appendingPathComponent("\(name).key").path,
                "-out", directory.appendingPathComponent("\(name).crt").path,
            ])
        }
        return InstanceIdentityFixture(directory: directory)
    }

    /// The identity document JSON of an instance launched at `pendingTime`.
    public static func document(accountID: String, pendingTime: Date = Date()) -> String {
        let time = ISO8601DateFormatter().string(from: pendingTime)
        return #"{"accountId":"\#(accountID)","architecture":"x86_64","availabilityZone":"eu-west-1a","imageId":"ami-0123456789abcdef0","instanceId":"i-0123456789abcdef0","instanceType":"t3.micro","pendingTime":"\#(time)","privateIp":"10.0.0.1","region":"eu-west-1","version":"2017-09-30"}"#
    }

    /// `document` signed by `signer` ("aws" or "attacker") as base64 DER PKCS#7 with the content
    /// attached, like `/latest/dynamic/instance-identity/pkcs7`. `embedCertificate` includes the
    /// signer's certificate in the message, as an attacker would.
    public func sign(_ document: String, by signer: String = "aws", embedCertificate: Bool = false) async throws -> String {
        let input = self.directory.appendingPathComponent("doc-\(UUID()).json")
        let output = self.directory.appendingPathComponent("doc-\(UUID()).p7")
        try Data(document.utf8).write(to: input)
        var arguments = [
            "smime", "-sign", "-binary", "-nodetach", "-in", input.path, "-outform", "DER", "-out", output.path,
            "-signer", self.directory.appendingPathComponent("\(signer).crt").path,
            "-inkey", self.directory.appendingPathComponent("\(signer).key").path,
        ]
        if !embedCertificate { arguments.append("-nocerts") }
        try await Self.openssl(arguments)
        return try Data(contentsOf: output).base64EncodedString()
    }

    static func openssl(_ arguments: [String]) async throws {
        try await Command.run(["/usr/bin/openssl"] + arguments)
    }
}
