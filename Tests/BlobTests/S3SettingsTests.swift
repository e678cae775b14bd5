import Runtime
import Testing

@testable import Blob

/// Reading the S3 settings from the environment: defaults, the credential source picked, and
/// refusals that name the variable.
@Suite struct S3SettingsTests {
    static func settings(_ values: [String: String]) throws -> S3Settings? {
        try S3Settings.from(EnvironmentReader(values))
    }

    static func problem(_ values: [String: String]) -> String? {
        do {
            _ = try self.settings(values)
            return nil
        } catch let error as ConfigurationError {
            return error.variable
        } catch {
            return "\(error)"
        }
    }

    @Test func withoutABucketBlobsStayOnTheFilesystem() throws {
        #expect(try Self.settings(["AWS_ACCESS_KEY_ID": "x"]) == nil)
    }

    @Test func defaultsFollowTheRegion() throws {
        let settings = try #require(try Self.settings([
            "STORAGE_S3_BUCKET": "b", "AWS_DEFAULT_REGION": "eu-central-1", "STORAGE_S3_PREFIX": "/registry/",
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret",
        ]))
        #expect(settings.endpoint == "https://s3.eu-central-1.amazonaws.com")
        #expect(settings.prefix == "registry/")
        #expect(settings.partSize == 8 << 20)
        #expect(settings.urlExpirationMilliseconds == 30_000)
        #expect(!settings.externalStore)
        #expect(settings.credentials == .fixed(AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret")))
    }

    @Test func theCredentialSourceFollowsTheSDKOrder() throws {
        let web = try #require(try Self.settings([
            "STORAGE_S3_BUCKET": "b", "AWS_REGION": "eu-west-1",
            "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r",
        ]))
        #expect(web.credentials == .webIdentity(
            tokenFile: "/var/run/token", roleARN: "arn:aws:iam::1:role/r", sessionName: "pierone",
            stsEndpoint: "https://sts.eu-west-1.amazonaws.com"
        ))
        let instance = try #require(try Self.settings(["STORAGE_S3_BUCKET": "b"]))
        #expect(instance.credentials == .instanceMetadata(endpoint: "http://169.254.169.254"))
    }

    @Test func badSettingsAreNamed() {
        let bucket = ["STORAGE_S3_BUCKET": "b"]
        #expect(Self.problem(bucket.merging(["AWS_ACCESS_KEY_ID": "x"]) { $1 }) == "AWS_SECRET_ACCESS_KEY")
        #expect(Self.problem(bucket.merging(["AWS_WEB_IDENTITY_TOKEN_FILE": "/t"]) { $1 }) == "AWS_ROLE_ARN")
        #expect(Self.problem(bucket.merging(["STORAGE_S3_ENDPOINT": "minio:9000"]) { $1 }) == "STORAGE_S3_ENDPOINT")
        #expect(Self.problem(bucket.merging(["STORAGE_S3_PART_SIZE_MB": "4"]) { $1 }) == "STORAGE_S3_PART_SIZE_MB")
        #expect(Self.problem(bucket.merging(["STORAGE_S3_URL_EXPIRATION": "soon"]) { $1 }) == "STORAGE_S3_URL_EXPIRATION")
        #expect(Self.problem(bucket.merging(["STORAGE_S3_EXTERNAL_STORE": "maybe"]) { $1 }) == "STORAGE_S3_EXTERNAL_STORE")
    }
}
