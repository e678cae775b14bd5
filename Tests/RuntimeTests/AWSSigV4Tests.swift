import Runtime
import Testing

/// AWS's published Signature Version 4 examples: the `aws-sig-v4-test-suite` cases and the S3
/// examples of the "Authenticating Requests (AWS Signature Version 4)" documentation.
@Suite struct AWSSigV4Tests {
    static let suite = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let s3 = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")

    @Test func getVanilla() {
        let authorization = AWSSigV4(region: "us-east-1", service: "service").authorization(
            method: "GET", path: "/", query: [],
            headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: AWSSigV4.emptyPayloadHash, credentials: Self.suite, amzDate: "20150830T123600Z"
        )
        #expect(authorization == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    @Test func getVanillaQueryOrderKeyCase() {
        let signature = AWSSigV4(region: "us-east-1", service: "service").signature(
            method: "GET", path: "/", query: [("Param2", "value2"), ("Param1", "value1")],
            headers: [("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")],
            payloadHash: AWSSigV4.emptyPayloadHash, credentials: Self.suite, amzDate: "20150830T123600Z"
        ).signature
        #expect(signature == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
    }

    @Test func s3GetObjectWithRange() {
        let result = AWSSigV4(region: "us-east-1", service: "s3").signature(
            method: "GET", path: "/test.txt", query: [],
            headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
                ("x-amz-content-sha256", AWSSigV4.emptyPayloadHash), ("x-amz-date", "20130524T000000Z"),
            ],
            payloadHash: AWSSigV4.emptyPayloadHash, credentials: Self.s3, amzDate: "20130524T000000Z"
        )
        #expect(result.signedHeaders == "host;range;x-amz-content-sha256;x-amz-date")
        #expect(result.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func s3ListObjects() {
        let signature = AWSSigV4(region: "us-east-1", service: "s3").signature(
            method: "GET", path: "/", query: [("max-keys", "2"), ("prefix", "J")],
            headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", AWSSigV4.emptyPayloadHash),
                ("x-amz-date", "20130524T000000Z"),
            ],
            payloadHash: AWSSigV4.emptyPayloadHash, credentials: Self.s3, amzDate: "20130524T000000Z"
        ).signature
        #expect(signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test func uriEncoding() {
        #expect(AWSSigV4.encode("a b/ü~.txt") == "a%20b%2F%C3%BC~.txt")
        #expect(AWSSigV4.encode("a b/ü~.txt", keepSlash: true) == "a%20b/%C3%BC~.txt")
    }
}
