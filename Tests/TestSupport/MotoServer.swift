import Foundation

/// moto's S3-compatible server (PyPI `moto[server]`) on a free loopback port, with signature and
/// permission checks on: after the four setup calls that create an IAM user with an S3 policy
/// and an access key, every request must be signed with that key.
public final class MotoServer: @unchecked Sendable {
    public let port: Int
    public let accessKeyID: String
    public let secretAccessKey: String
    private let process: Process

    public var endpoint: String { "http://127.0.0.1:\(self.port)" }

    public static func start(bucket: String) async throws -> MotoServer {
        let port = try PostgresCluster.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)]
        process.environment = ProcessInfo.processInfo.environment.merging(["INITIAL_NO_AUTH_ACTION_COUNT": "4"]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let setup = """
            import boto3, json, sys, time
            endpoint = sys.argv[1]
            for _ in range(100):
                try:
                    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                                       aws_access_key_id="setup", aws_secret_access_key="setup")
                    iam.create_user(UserName="pierone")
                    break
                except Exception:
                    time.sleep(0.1)
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            iam.put_user_policy(UserName="pierone", PolicyName="s3", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName="pierone")["AccessKey"]
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
            s3.create_bucket(Bucket=sys.argv[2])
            print(key["AccessKeyId"] + " " + key["SecretAccessKey"])
            """
        let output = (try? await Command.run(["python3", "-c", setup, "http://127.0.0.1:\(port)", bucket])) ?? ""
        let parts = output.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard parts.count == 2 else {
            process.terminate()
            throw PostgresCluster.SetupError("moto setup failed: \(output)")
        }
        return MotoServer(port: port, accessKeyID: parts[0], secretAccessKey: parts[1], process: process)
    }

    private init(port: Int, accessKeyID: String, secretAccessKey: String, process: Process) {
        self.port = port
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.process = process
    }

    public func stop() {
        if self.process.isRunning { self.process.terminate() }
    }
}
