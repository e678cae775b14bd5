import AsyncHTTPClient
import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Runtime
import Synchronization
import Testing
import TestSupport

@testable import Blob

/// What is particular to S3: multipart uploads with bounded memory, leftovers, start-up checks,
/// outages, presigned URLs and the credential sources. On moto with signature checking on.
@Suite struct S3StorageDriverTests {
    let repository = RepositoryName("team/app")!
    typealias F = StorageFixture

    /// A service over a driver the test can look into, on the shared moto under a fresh prefix.
    static func withDriver(
        externalStore: Bool = false, _ body: (BlobService, S3StorageDriver, S3Client, MotoServer) async throws -> Void
    ) async throws {
        let moto = try await MotoServer.shared()
        var settings = F.settings(moto, prefix: "test-\(UUID())")
        settings.externalStore = externalStore
        let client = F.client(moto)
        let driver = S3StorageDriver(client: client, settings: settings)
        try await body(BlobService(driver: driver, logger: F.logger), driver, client, moto)
    }

    /// 200 MiB in one streamed request, in 64 KiB chunks as a connection delivers them: it arrives
    /// as a multipart upload of 40 parts, and the driver never holds more than the part being sent,
    /// the part filling and one chunk.
    @Test func aLargeStreamedRequestBecomesAMultipartUploadWithBoundedMemory() async throws {
        try await Self.withDriver { service, driver, client, _ in
            let chunk = F.pattern(64 << 10)
            let count = 200 * 16
            var hasher = DigestHasher(.sha256)
            for _ in 0..<count { hasher.update(chunk) }
            let digest = hasher.finalize()
            let body = AsyncStream<ByteBuffer> { continuation in
                for _ in 0..<count { continuation.yield(chunk) }
                continuation.finish()
            }
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            let status = try await service.appendUpload(session.id, for: self.repository, at: nil, body: body)
            #expect(status.offset == 200 << 20)
            let blob = try await service.commitUpload(session.id, for: self.repository, digest: digest)
            #expect(driver.buffered.peak <= 2 * F.partSize + chunk.readableBytes)
            #expect(driver.buffered.peak > F.partSize)
            let object = try #require(try await client.headObject(driver.prefix + blob.location))
            #expect(object.size == 200 << 20)
            // S3 gives objects assembled from parts an ETag of "<md5 of md5s>-<number of parts>".
            #expect(object.etag.hasSuffix("-40\""))
            let tail = try await F.readAll(service, blob, range: Int64(200 << 20) - 10...Int64(200 << 20) - 1)
            #expect(tail == chunk.getSlice(at: chunk.readableBytes - 10, length: 10))
        }
    }

    /// A multipart upload no session knows (its process died before recording it) is aborted by
    /// the expiry sweep; one a live session knows is left alone.
    @Test func orphanedMultipartUploadsAreAbortedByTheExpirySweep() async throws {
        try await Self.withDriver { service, driver, client, _ in
            let live = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(live.id, for: self.repository, at: nil, body: F.stream([F.pattern(F.partSize)]))
            let orphan = driver.prefix + "blobs/" + UUID().uuidString.lowercased()
            _ = try await client.createMultipartUpload(orphan)
            #expect(try await client.listMultipartUploads(prefix: driver.prefix).count == 2)
            // Sessions younger than an hour stay; the orphan (initiated before now + 1 s) goes.
            #expect(try await driver.collectGarbage(olderThan: Date().timeIntervalSince1970 + 1) == 1)
            #expect(try await client.listMultipartUploads(prefix: driver.prefix) == [driver.prefix + "blobs/\(live.id)"])
            try await service.cancelUpload(live.id, for: self.repository)
        }
    }

    /// Pending bytes that changed under the session (a write interrupted between storing them and
    /// recording the session) are refused, never stitched into the blob.
    @Test func pendingBytesChangedUnderTheSessionAreRefused() async throws {
        try await Self.withDriver { service, driver, client, _ in
            let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
            _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: F.stream(["pending"]))
            let tails = try await client.listObjects(prefix: driver.prefix + "blobs/\(session.id).").map(\.key)
            #expect(tails.count == 1)
            for tail in tails { try await client.putObject(tail, ByteBuffer(string: "PENDING")) }
            do {
                _ = try await service.appendUpload(session.id, for: self.repository, at: 7, body: F.stream(["more"]))
                Issue.record("an append stitched changed bytes")
            } catch let error as RegistryError {
                #expect(error.code == .blobUploadInvalid)
            }
        }
    }

    /// The start-up check names the setting to fix.
    @Test func startUpRefusesWrongCredentialsAMissingBucketAndAnUnreachableEndpoint() async throws {
        let moto = try await MotoServer.shared()
        func failure(_ settings: S3Settings) async -> ConfigurationError? {
            do {
                _ = try await BlobService.s3(settings: settings, logger: F.logger)
                return nil
            } catch {
                return error as? ConfigurationError
            }
        }
        let wrongSecret = await failure(F.settings(moto, prefix: "", secret: "not-the-secret"))
        #expect(wrongSecret?.variable.contains("AWS_SECRET_ACCESS_KEY") == true)
        #expect(wrongSecret?.problem.contains("403") == true)
        var missing = F.settings(moto, prefix: "")
        missing.bucket = "no-such-bucket"
        #expect(await failure(missing)?.variable == "STORAGE_S3_BUCKET")
        var unreachable = F.settings(moto, prefix: "")
        let closedPort = try PostgresCluster.freePort()
        unreachable.endpoint = "http://127.0.0.1:\(closedPort)"
        #expect(await failure(unreachable)?.variable == "STORAGE_S3_ENDPOINT")
        #expect(await failure(F.settings(moto, prefix: "")) == nil)
    }

    /// When S3 stops answering, requests fail with 503 UNAVAILABLE (after retries), not 500.
    @Test func anOutageIs503() async throws {
        let moto = try await MotoServer.start()
        let settings = F.settings(moto, prefix: "outage")
        let service = try await BlobService.s3(settings: settings, logger: F.logger)
        let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
        try await moto.stopAndWait()
        do {
            _ = try await service.uploadStatus(session.id, for: self.repository)
            Issue.record("a request succeeded with S3 down")
        } catch let error as RegistryError {
            #expect(error.status == 503)
            #expect(error.code == .unavailable)
        }
    }

    /// `STORAGE_S3_EXTERNAL_STORE`: the presigned URL for a blob is the one botocore (the AWS SDK
    /// for Python) generates for the same key, credentials, expiry and time, and nil without it.
    /// moto cannot check presigned URLs while its signature checks are on (it insists on an
    /// Authorization header), so the SDK is the reference here; the end-to-end test follows the
    /// redirect with real clients.
    @Test func presignedURLsMatchTheAWSSDK() async throws {
        try await Self.withDriver(externalStore: true) { service, driver, _, moto in
            let blob = BlobRecord(digest: DigestHasher.digest(of: ByteBuffer()), size: 0, location: "blobs/0f1e0f1e-0000-4000-8000-00000000000a.0123456789abcdef")
            let now = Date(timeIntervalSince1970: 1_796_000_000)
            let ours = try await driver.client.presignedGet(driver.prefix + blob.location, expires: 30, now: now)
            let url = try #require(try await service.externalURL(for: blob))
            #expect(url.contains("X-Amz-Expires=30&"))
            let script = """
                import sys, datetime, botocore.auth, boto3
                from botocore.config import Config
                botocore.auth.get_current_datetime = lambda: datetime.datetime.fromtimestamp(int(sys.argv[1]), datetime.timezone.utc).replace(tzinfo=None)
                s3 = boto3.client("s3", endpoint_url=sys.argv[2], region_name="us-east-1",
                                  aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4],
                                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
                print(s3.generate_presigned_url("get_object", Params={"Bucket": sys.argv[5], "Key": sys.argv[6]}, ExpiresIn=30))
                """
            let reference = try await Command.run([
                "python3", "-c", script, "1796000000", moto.endpoint, moto.accessKeyID, moto.secretAccessKey, moto.bucket,
                driver.prefix + blob.location,
            ]).trimmingCharacters(in: .whitespacesAndNewlines)
            func signature(_ url: String) -> String? {
                URLComponents(string: url)?.queryItems?.first { $0.name == "X-Amz-Signature" }?.value
            }
            #expect(signature(ours) != nil)
            #expect(signature(ours) == signature(reference))
            #expect(ours.hasPrefix(moto.endpoint + "/" + moto.bucket + "/" + driver.prefix + "blobs/0f1e0f1e-0000-4000-8000-00000000000a.0123456789abcdef?"))
        }
        try await Self.withDriver(externalStore: false) { service, _, _, _ in
            let blob = BlobRecord(digest: DigestHasher.digest(of: ByteBuffer()), size: 0, location: "blobs/0f1e0f1e-0000-4000-8000-00000000000a")
            let url = try await service.externalURL(for: blob)
            #expect(url == nil)
        }
    }

    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`: the token is exchanged at STS for temporary
    /// credentials (with a session token) that S3 accepts.
    @Test func webIdentityCredentialsComeFromSTS() async throws {
        let moto = try await MotoServer.start(webIdentityRole: true)
        defer { moto.stop() }
        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("token-\(UUID())")
        try Data("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwaWVyb25lIn0.c2ln".utf8).write(to: tokenFile)
        defer { try? FileManager.default.removeItem(at: tokenFile) }
        let environment = EnvironmentReader([
            "STORAGE_S3_BUCKET": moto.bucket, "STORAGE_S3_ENDPOINT": moto.endpoint, "AWS_REGION": "us-east-1",
            "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile.path, "AWS_ROLE_ARN": try #require(moto.roleARN),
            "AWS_ENDPOINT_URL_STS": moto.endpoint, "STORAGE_S3_PREFIX": "irsa",
        ])
        let settings = try #require(try S3Settings.from(environment))
        guard case .webIdentity = settings.credentials else {
            Issue.record("the web identity settings were not picked: \(settings.credentials)")
            return
        }
        // The start-up check makes the one STS call; S3 checks every request from there on, and
        // the temporary credentials (with their session token) are all the service has.
        let service = try await BlobService.s3(settings: settings, logger: F.logger)
        let session = try await service.startUpload(for: self.repository, algorithm: .sha256)
        _ = try await service.appendUpload(session.id, for: self.repository, at: nil, body: F.stream(["irsa"]))
        let blob = try await service.commitUpload(
            session.id, for: self.repository, digest: DigestHasher.digest(of: ByteBuffer(string: "irsa"))
        )
        #expect(String(buffer: try await F.readAll(service, blob)) == "irsa")
    }

    /// The instance metadata service (IMDSv2), as a stand-in HTTP server handing out moto's real
    /// keys: a session token first, then the role's credentials, fetched again when they are about
    /// to expire and not before.
    @Test func instanceMetadataCredentialsAreRefreshedBeforeTheyExpire() async throws {
        let moto = try await MotoServer.shared()
        let fetches = Mutex(0)
        let expiresIn = Mutex(60.0)
        let router = Router()
        router.put("/latest/api/token") { request, _ -> String in
            guard request.headers[HTTPField.Name("X-aws-ec2-metadata-token-ttl-seconds")!] != nil else {
                throw HTTPError(.badRequest)
            }
            return "imds-session"
        }
        router.get("/latest/meta-data/iam/security-credentials/") { request, _ -> String in
            guard request.headers[HTTPField.Name("X-aws-ec2-metadata-token")!] == "imds-session" else { throw HTTPError(.unauthorized) }
            return "pierone-role\n"
        }
        router.get("/latest/meta-data/iam/security-credentials/pierone-role") { request, _ -> String in
            guard request.headers[HTTPField.Name("X-aws-ec2-metadata-token")!] == "imds-session" else { throw HTTPError(.unauthorized) }
            fetches.withLock { $0 += 1 }
            let formatter = ISO8601DateFormatter()
            let expiration = formatter.string(from: Date().addingTimeInterval(expiresIn.withLock { $0 }))
            return """
                {"Code":"Success","AccessKeyId":"\(moto.accessKeyID)","SecretAccessKey":"\(moto.secretAccessKey)",\
                "Token":null,"Expiration":"\(expiration)"}
                """
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { imds in
            let provider = AWSCredentialsProvider(
                source: .instanceMetadata(endpoint: "http://127.0.0.1:\(imds.port!)"), http: HTTPClient.shared
            )
            // 60 s left is inside the 300 s refresh margin: every call fetches again.
            _ = try await provider.credentials()
            _ = try await provider.credentials()
            #expect(fetches.withLock { $0 } == 2)
            // An hour left: the credentials are reused.
            expiresIn.withLock { $0 = 3600 }
            let credentials = try await provider.credentials()
            _ = try await provider.credentials()
            #expect(fetches.withLock { $0 } == 3)
            #expect(credentials.accessKeyID == moto.accessKeyID)
            let client = S3Client(endpoint: moto.endpoint, bucket: moto.bucket, region: "us-east-1", http: S3Client.sharedHTTPClient) {
                try await provider.credentials()
            }
            try await client.headBucket()
        }
    }
}
