import Foundation
import Runtime

/// Everything the S3 driver reads from the environment; `STORAGE_S3_BUCKET` switches it on.
package struct S3Settings: Sendable {
    /// `STORAGE_S3_BUCKET`.
    package var bucket: String
    /// `STORAGE_S3_PREFIX`: a key prefix, so one bucket can hold several registries ("" or ending in "/").
    package var prefix: String
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`), default `us-east-1`.
    package var region: String
    /// `STORAGE_S3_ENDPOINT`: an S3-compatible server; default `https://s3.<region>.amazonaws.com`.
    /// Requests use path-style addressing (`<endpoint>/<bucket>/<key>`).
    package var endpoint: String
    /// `STORAGE_S3_EXTERNAL_STORE`: answer blob GETs with a 307 to a presigned S3 URL.
    package var externalStore: Bool
    /// `STORAGE_S3_URL_EXPIRATION`: milliseconds a presigned URL stays valid (default 30000).
    package var urlExpirationMilliseconds: Int
    /// `STORAGE_S3_PART_SIZE_MB`: size of each multipart part, which is also the most an upload
    /// buffers in memory (default 8 MiB; at most 10,000 parts, so blobs up to 80 GB by default).
    package var partSize: Int
    /// Where the credentials come from (see `AWSCredentialsProvider`).
    var credentials: AWSCredentialsProvider.Source

    package init(
        bucket: String, prefix: String = "", region: String = "us-east-1", endpoint: String? = nil,
        externalStore: Bool = false, urlExpirationMilliseconds: Int = 30_000, partSize: Int = 8 << 20,
        accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil
    ) {
        self.bucket = bucket
        self.prefix = Self.normalize(prefix: prefix)
        self.region = region
        self.endpoint = endpoint ?? "https://s3.\(region).amazonaws.com"
        self.externalStore = externalStore
        self.urlExpirationMilliseconds = urlExpirationMilliseconds
        self.partSize = partSize
        self.credentials = .fixed(AWSCredentials(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, sessionToken: sessionToken))
    }

    /// Nil when `STORAGE_S3_BUCKET` is not set (blobs then go to the filesystem).
    package static func from(_ environment: EnvironmentReader) throws -> S3Settings? {
        guard let bucket = environment.string("STORAGE_S3_BUCKET") else { return nil }
        let region = environment.string("AWS_REGION") ?? environment.string("AWS_DEFAULT_REGION") ?? "us-east-1"
        let endpoint = environment.string("STORAGE_S3_ENDPOINT", default: "https://s3.\(region).amazonaws.com")
        guard let url = URL(string: endpoint), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            throw ConfigurationError("STORAGE_S3_ENDPOINT", "must be an http(s) URL such as http://minio:9000, not \(endpoint)")
        }
        var settings = S3Settings(
            bucket: bucket, prefix: environment.string("STORAGE_S3_PREFIX", default: ""), region: region,
            endpoint: endpoint,
            externalStore: try environment.bool("STORAGE_S3_EXTERNAL_STORE", default: false),
            urlExpirationMilliseconds: try environment.integer(
                "STORAGE_S3_URL_EXPIRATION", default: 30_000, range: 1_000...604_800_000
            ),
            partSize: try environment.integer("STORAGE_S3_PART_SIZE_MB", default: 8, range: 5...1024) << 20,
            accessKeyID: "", secretAccessKey: ""
        )
        settings.credentials = try Self.credentialSource(environment, region: region)
        return settings
    }

    static func credentialSource(_ environment: EnvironmentReader, region: String) throws -> AWSCredentialsProvider.Source {
        try AWSCredentialsProvider.Source(environment: environment, region: region)
    }

    /// "", or the prefix without a leading slash and with one trailing slash.
    static func normalize(prefix: String) -> String {
        let trimmed = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        return trimmed.isEmpty ? "" : trimmed + "/"
    }

    /// Which setting to look at for a failure of the start-up check.
    var credentialSettings: String {
        switch self.credentials {
        case .fixed: "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
        case .webIdentity: "AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN"
        case .instanceMetadata: "the instance profile (no AWS_ACCESS_KEY_ID or AWS_WEB_IDENTITY_TOKEN_FILE set)"
        }
    }
}
