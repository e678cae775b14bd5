import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// moto's S3-compatible server (PyPI `moto[server]`) on a free loopback port, with signature and
/// permission checks on: after the setup calls that create an IAM user with an S3, SNS and SQS policy and an
/// access key (and, with `webIdentityRole`, a role with the same policy), every request must be
/// signed with valid credentials.
///
/// moto turns its checks on after a fixed number of requests (`INITIAL_NO_AUTH_ACTION_COUNT`). It
/// cannot answer an unsigned STS `AssumeRoleWithWebIdentity` once they are on, so a server started
/// with `webIdentityRole` leaves exactly one request unchecked after its setup: the first call
/// the test makes must be that one.
public final class MotoServer: @unchecked Sendable {
    public let port: Int
    public let accessKeyID: String
    public let secretAccessKey: String
    /// The ARN of the role a web identity may assume (with `webIdentityRole`).
    public let roleARN: String?
    public let bucket: String
    private let process: ChildProcess

    public var endpoint: String { "http://127.0.0.1:\(self.port)" }

    /// The server shared by a test process, started on first use (bucket `pierone`). Tests keep
    /// apart by using key prefixes of their own.
    public static func shared() async throws -> MotoServer {
        try await SharedMoto.instance.server()
    }

    /// With `checkSignatures: false` the checks never start (for what moto cannot check, such as
    /// presigned URLs).
    public static func start(
        bucket: String = "pierone", webIdentityRole: Bool = false, checkSignatures: Bool = true, port: Int? = nil
    ) async throws -> MotoServer {
        let port = try port ?? PostgresCluster.freePort()
        // Setup: create_user, put_user_policy, create_access_key (+ create_role, put_role_policy,
        // and the one STS call the test makes).
        let unchecked = checkSignatures ? (webIdentityRole ? 7 : 4) : 1_000_000_000
        let environment = ProcessInfo.processInfo.environment.merging(["INITIAL_NO_AUTH_ACTION_COUNT": String(unchecked)]) { $1 }
        var log: FileHandle?
        if let path = ProcessInfo.processInfo.environment["MOTO_LOG"], FileManager.default.createFile(atPath: path, contents: nil) {
            // For debugging a signature mismatch: moto's request log.
            log = FileHandle(forWritingAtPath: path)
        }
        let process = try ChildProcess(
            ["python3", "-c", Self.launcher, "-H", "127.0.0.1", "-p", String(port)], environment: environment,
            output: log?.fileDescriptor
        )
        try? log?.close()
        MotoCleanup.register(process.pid)
        let setup = """
            import boto3, json, sys, time
            endpoint, bucket, with_role = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
            for _ in range(200):
                try:
                    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                                       aws_access_key_id="setup", aws_secret_access_key="setup")
                    iam.create_user(UserName="pierone")
                    break
                except Exception:
                    time.sleep(0.1)
            policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sns:*", "sqs:*"], "Resource": "*"}]})
            iam.put_user_policy(UserName="pierone", PolicyName="s3", PolicyDocument=policy)
            role = "-"
            if with_role:
                trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Principal": {"Federated": "oidc"}, "Action": "sts:AssumeRoleWithWebIdentity"}]})
                role = iam.create_role(RoleName="pierone", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
                iam.put_role_policy(RoleName="pierone", PolicyName="s3", PolicyDocument=policy)
            key = iam.create_access_key(UserName="pierone")["AccessKey"]
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
            s3.create_bucket(Bucket=bucket)
            print(key["AccessKeyId"] + " " + key["SecretAccessKey"] + " " + role)
            """
        let output = (try? await Command.run([
            "python3", "-c", setup, "http://127.0.0.1:\(port)", bucket, webIdentityRole ? "1" : "0",
        ])) ?? ""
        let parts = output.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard parts.count == 3 else {
            process.signal(SIGTERM)
            throw PostgresCluster.SetupError("moto setup failed: \(output)")
        }
        return MotoServer(
            port: port, accessKeyID: parts[0], secretAccessKey: parts[1], roleARN: parts[2] == "-" ? nil : parts[2],
            bucket: bucket, process: process
        )
    }

    /// `moto.server`, with one fix: moto checks signatures against the request URL as werkzeug
    /// rebuilds it, which decodes `%2F` in query values (`?prefix=a%2Fb` becomes `?prefix=a/b`), so
    /// every correctly signed request with a slash in a query value (a listing by prefix) fails
    /// with SignatureDoesNotMatch, boto3's included. The launcher puts the raw query back before
    /// the check; the check itself is unchanged.
    static let launcher = """
        import sys
        from urllib.parse import urlsplit, urlunsplit
        from moto.core import responses
        _setup = responses.BaseResponse.setup_class
        def setup_class(self, request, full_url, headers, use_raw_body=False):
            _setup(self, request, full_url, headers, use_raw_body)
            raw = getattr(request, "environ", {}).get("QUERY_STRING")
            if raw:
                self.uri = urlunsplit(urlsplit(self.uri)._replace(query=raw))
        responses.BaseResponse.setup_class = setup_class
        from moto.server import main
        sys.exit(main(sys.argv[1:]))
        """

    private init(port: Int, accessKeyID: String, secretAccessKey: String, roleARN: String?, bucket: String, process: ChildProcess) {
        self.port = port
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.roleARN = roleARN
        self.bucket = bucket
        self.process = process
    }

    /// Kills the server (moto's werkzeug server does not always exit on SIGTERM).
    public func stop() {
        self.process.signal(SIGKILL)
    }

    /// Stops the server and returns once it has exited (up to 10 s).
    public func stopAndWait() async throws {
        self.stop()
        for _ in 0..<100 where self.process.isRunning {
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

private actor SharedMoto {
    static let instance = SharedMoto()
    private var task: Task<MotoServer, any Error>?

    func server() async throws -> MotoServer {
        if let task { return try await task.value }
        let task = Task { try await MotoServer.start() }
        self.task = task
        return try await task.value
    }
}

/// Stops every moto server this process started when it exits.
private enum MotoCleanup {
    private static let processes = Mutex<[Int32]>([])

    static func register(_ pid: Int32) {
        let first = processes.withLock { list in
            list.append(pid)
            return list.count == 1
        }
        if first {
            atexit {
                for pid in MotoCleanup.processes.withLock({ $0 }) {
                    kill(pid, SIGKILL)
                }
            }
        }
    }
}
