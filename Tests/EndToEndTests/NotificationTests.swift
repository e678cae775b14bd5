import Contracts
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Metadata
import NIOCore
import NIOFoundationCompat
import PierOneApp
import Runtime
import ServiceLifecycle
import Synchronization
import Testing
import TestSupport

/// Tag notifications through the durable outbox: a webhook receiver (a real HTTP server in the
/// test) and moto's SNS, with the registry stopped between the push and the delivery.
@Suite struct NotificationTests {
    static let secret = "a-shared-secret-of-some-length"

    /// A webhook endpoint that records what it is sent; it refuses the first delivery it sees with
    /// 503, so every run also exercises a retry.
    final class Receiver: Sendable {
        struct Delivery: Sendable {
            var id: String
            var body: [String: String]
            var signatureValid: Bool
        }

        let accepted = Mutex<[Delivery]>([])
        let requests = Mutex(0)

        func run<T: Sendable>(port: Int, _ body: @Sendable () async throws -> T) async throws -> T {
            let router = Router()
            router.post("/hook") { request, _ -> Response in
                let bytes = try await request.body.collect(upTo: 1 << 20)
                let number = self.requests.withLock { count in
                    count += 1
                    return count
                }
                if number == 1 { return Response(status: .serviceUnavailable) }
                let expected = "sha256=" + HMAC<SHA256>.authenticationCode(
                    for: Data(buffer: bytes), using: SymmetricKey(data: Data(NotificationTests.secret.utf8))
                ).map { String(format: "%02x", $0) }.joined()
                let object = (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
                let strings = object.compactMapValues { $0 as? String }
                self.accepted.withLock {
                    $0.append(Delivery(
                        id: request.headers[HTTPField.Name("X-PierOne-Event-Id")!] ?? "",
                        body: strings, signatureValid: request.headers[HTTPField.Name("X-PierOne-Signature")!] == expected
                    ))
                }
                return Response(status: .noContent)
            }
            // On the given port (the live test client would pick another), until `body` is done.
            let (started, running) = AsyncStream.makeStream(of: Void.self)
            let app = Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
                onServerRunning: { _ in running.yield() }
            )
            let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "receiver")))
            return try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                for await _ in started { break }
                do {
                    let result = try await body()
                    await group.triggerGracefulShutdown()
                    return result
                } catch {
                    await group.triggerGracefulShutdown()
                    throw error
                }
            }
        }
    }

    /// Push, stop the registry before anything could be delivered (the receiver is not listening
    /// yet), start the receiver and the registry again: each tag change arrives exactly once.
    @Test(arguments: Backend.allCases)
    func webhookGetsEachChangeOnceAcrossARestart(_ backend: Backend) async throws {
        let port = try PostgresCluster.freePort()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pierone-notify-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = backend == .postgres ? try await PostgresCluster.shared().makeDatabase() : nil
        let configure: @Sendable (inout ServeConfiguration) -> Void = { configuration in
            configuration.notifications = NotificationSettings(
                registry: "registry.example.org",
                webhooks: [.init(url: "http://127.0.0.1:\(port)/hook", secret: Self.secret)],
                maximumRetryDelay: .seconds(1), pollInterval: .milliseconds(100)
            )
        }
        let pushed = try await RegistryHarness.withRegistry(
            backend, database: database, directory: directory, configure: configure
        ) { registry in
            let first = try await registry.pushImage(to: "team/app", reference: "1.0", config: #"{"n":1}"#, layers: ["a"])
            try await registry.pushImage(to: "team/app", reference: "1.0-SNAPSHOT", config: #"{"n":1}"#, layers: ["a"])
            let moved = try await registry.pushImage(to: "team/app", reference: "1.0-SNAPSHOT", config: #"{"n":2}"#, layers: ["b"])
            // An identical re-push and a refused move announce nothing.
            let again = try await registry.putManifest(first.bytes, to: "team/app", reference: "1.0", mediaType: MediaType.ociManifest)
            #expect(again.status == .created)
            try await registry.pushImage(to: "team/app", reference: "1.0", config: #"{"n":3}"#, layers: ["c"], expect: .conflict)
            // Long enough for the dispatcher to try (and fail: nobody listens) at least once.
            try await Task.sleep(for: .milliseconds(500))
            return ["1.0": first.digest.description, "moved": moved.digest.description]
        }
        let receiver = Receiver()
        #expect(receiver.requests.withLock { $0 } == 0)
        try await receiver.run(port: port) {
            try await RegistryHarness.withRegistry(backend, database: database, directory: directory, configure: configure) { _ in
                for _ in 0..<150 where receiver.accepted.withLock({ $0.count }) < 3 {
                    try await Task.sleep(for: .milliseconds(100))
                }
                // Nothing more arrives once all three were taken.
                try await Task.sleep(for: .seconds(2))
            }
        }
        let deliveries = receiver.accepted.withLock { $0 }
        #expect(deliveries.count == 3, "\(deliveries.map(\.body))")
        #expect(Set(deliveries.map(\.id)).count == deliveries.count)
        #expect(deliveries.allSatisfy { $0.signatureValid })
        #expect(deliveries.allSatisfy { $0.body["id"] == $0.id && $0.body["registry"] == "registry.example.org" })
        #expect(deliveries.allSatisfy { $0.body["team"] == "team" && $0.body["image"] == "app" })
        let changes = deliveries.map { [$0.body["tag"] ?? "", $0.body["action"] ?? "", $0.body["digest"] ?? ""] }
        #expect(changes.sorted { $0.joined() < $1.joined() } == [
            ["1.0", "created", pushed["1.0"]!],
            ["1.0-SNAPSHOT", "created", pushed["1.0"]!],
            ["1.0-SNAPSHOT", "moved", pushed["moved"]!],
        ].sorted { $0.joined() < $1.joined() })
        #expect(receiver.requests.withLock { $0 } == 4, "one refused delivery, retried")
    }

    /// A push reaches an SQS queue subscribed to the SNS topic in moto (signatures checked).
    @Test func snsPublishReachesTheTopic() async throws {
        let moto = try await MotoServer.shared()
        let topicName = "pierone-\(UUID().uuidString.prefix(8).lowercased())"
        let environment = [
            "AWS_ACCESS_KEY_ID": moto.accessKeyID, "AWS_SECRET_ACCESS_KEY": moto.secretAccessKey,
            "AWS_DEFAULT_REGION": "eu-central-1",
        ]
        let setup = try await Command.run([
            "python3", "-c",
            """
            import boto3, sys
            endpoint, name = sys.argv[1], sys.argv[2]
            sns = boto3.client("sns", endpoint_url=endpoint)
            sqs = boto3.client("sqs", endpoint_url=endpoint)
            topic = sns.create_topic(Name=name)["TopicArn"]
            queue = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
            print(topic, queue)
            """,
            moto.endpoint, topicName,
        ], environment: environment)
        let parts = setup.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        try #require(parts.count == 2, "\(setup)")
        let settings = try NotificationSettings(environment: .init(environment.merging([
            "API_SNS_TOPIC_ARN": parts[0], "AWS_ENDPOINT_URL_SNS": moto.endpoint, "NOTIFICATION_REGISTRY_NAME": "pierone.test",
        ]) { $1 }))
        #expect(settings.sns?.region == "eu-central-1", "the region comes from the topic ARN")
        try await RegistryHarness.withRegistry(configure: { $0.notifications = settings }) { registry in
            let digest = try await registry.pushImage(to: "team/app", reference: "1.0", config: #"{"sns":1}"#, layers: ["a"])
                .digest.description
            let received = try await Command.run([
                "python3", "-c",
                """
                import boto3, sys
                sqs = boto3.client("sqs", endpoint_url=sys.argv[1])
                for _ in range(20):
                    answer = sqs.receive_message(QueueUrl=sys.argv[2], WaitTimeSeconds=1, MaxNumberOfMessages=10)
                    if answer.get("Messages"):
                        print(answer["Messages"][0]["Body"])
                        break
                """,
                moto.endpoint, parts[1],
            ], environment: environment)
            let message = try #require(
                try JSONSerialization.jsonObject(with: Data(received.utf8)) as? [String: Any], "\(received)"
            )
            #expect(message["registry"] as? String == "pierone.test")
            #expect(message["team"] as? String == "team")
            #expect(message["image"] as? String == "app")
            #expect(message["tag"] as? String == "1.0")
            #expect(message["digest"] as? String == digest)
            #expect(message["action"] as? String == "created")
        }
    }

    @Test func settingsAreCheckedAtStartUp() throws {
        func settings(_ values: [String: String]) throws -> NotificationSettings {
            try NotificationSettings(environment: .init(values))
        }
        #expect(try settings([:]).sinkNames.isEmpty)
        #expect(throws: ConfigurationError.self) { try settings(["API_SNS_TOPIC_ARN": "not-an-arn"]) }
        #expect(throws: ConfigurationError.self) { try settings(["API_SNS_REGION": "eu-west-1"]) }
        #expect(throws: ConfigurationError.self) { try settings(["NOTIFICATION_WEBHOOK_URLS": "http://a/hook"]) }
        #expect(throws: ConfigurationError.self) {
            try settings(["NOTIFICATION_WEBHOOK_URLS": "ftp://a/hook", "NOTIFICATION_WEBHOOK_SECRET": Self.secret])
        }
        let both = try settings([
            "API_SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:tags", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
            "NOTIFICATION_WEBHOOK_URLS": "http://a/hook, https://b/hook", "NOTIFICATION_WEBHOOK_SECRET": Self.secret,
        ])
        #expect(both.sinkNames == ["sns:arn:aws:sns:eu-west-1:123456789012:tags", "webhook:http://a/hook", "webhook:https://b/hook"])
        #expect(both.sns?.endpoint == "https://sns.eu-west-1.amazonaws.com")
    }
}
