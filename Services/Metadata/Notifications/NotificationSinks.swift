import AsyncHTTPClient
import Contracts
import Crypto
import NIOCore
import NIOHTTP1
import Runtime

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A destination of tag notifications.
protocol NotificationSink: Sendable {
    /// The outbox's name for this sink.
    var name: String { get }
    /// Delivers one message; throws when the destination did not take it (it is retried later).
    func deliver(_ message: NotificationMessage) async throws
}

/// What every sink sends: the original's `{"registry","team","image","tag"}` plus the digest and
/// what happened. `id` is the same for every sink and every retry of one tag change.
struct NotificationMessage: Sendable, Codable, Equatable {
    var id: String
    var registry: String
    var team: String
    /// The artifact (the original's name for it).
    var image: String
    /// Absent when an untagged manifest was deleted.
    var tag: String?
    var digest: String
    /// `created`, `moved` or `deleted`.
    var action: String
    var previousDigest: String?
    var pushedBy: String?
    /// ISO-8601 UTC with milliseconds.
    var time: String
    /// Why the registry deleted it itself (a retention rule, garbage collection); absent otherwise.
    var reason: String?

    enum CodingKeys: String, CodingKey {
        case id, registry, team, image, tag, digest, action, reason
        case previousDigest = "previous_digest"
        case pushedBy = "pushed_by"
        case time
    }

    init(_ event: TagEvent, registry: String) {
        self.id = event.id
        self.registry = registry
        self.team = event.team
        self.image = event.artifact
        self.tag = event.tag
        self.digest = event.digest
        self.action = event.action.rawValue
        self.previousDigest = event.previousDigest
        self.pushedBy = event.pushedBy
        self.time = Timestamps.iso8601(millis: event.timeMillis)
        self.reason = event.reason
    }

    var json: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data()
    }
}

struct DeliveryFailure: Error, CustomStringConvertible {
    var description: String
}

/// A JSON `POST` with `X-PierOne-Signature: sha256=<hex HMAC-SHA256 of the body>` and
/// `X-PierOne-Event-Id`; any 2xx is taken as delivered.
struct WebhookSink: NotificationSink {
    let url: String
    let key: SymmetricKey
    let http: HTTPClient

    init(url: String, secret: String, http: HTTPClient) {
        self.url = url
        self.key = SymmetricKey(data: Data(secret.utf8))
        self.http = http
    }

    var name: String { "webhook:" + self.url }

    static func signature(of body: Data, key: SymmetricKey) -> String {
        "sha256=" + DigestHasher.hex(HMAC<SHA256>.authenticationCode(for: body, using: key))
    }

    func deliver(_ message: NotificationMessage) async throws {
        let body = message.json
        var request = HTTPClientRequest(url: self.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "pierone-notifications")
        request.headers.add(name: "X-PierOne-Event-Id", value: message.id)
        request.headers.add(name: "X-PierOne-Signature", value: Self.signature(of: body, key: self.key))
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await self.http.execute(request, timeout: .seconds(10))
        _ = try? await response.body.collect(upTo: 64 * 1024)
        guard (200..<300).contains(response.status.code) else {
            throw DeliveryFailure(description: "\(Redaction.url(self.url)) answered \(response.status.code)")
        }
    }
}

/// SNS `Publish` (query protocol, SigV4-signed) of the message as JSON to one topic.
struct SNSSink: NotificationSink {
    let settings: NotificationSettings.SNS
    let credentials: AWSCredentialsProvider
    let http: HTTPClient

    var name: String { "sns:" + self.settings.topicARN }

    func deliver(_ message: NotificationMessage) async throws {
        let form = [
            ("Action", "Publish"), ("Version", "2010-03-31"), ("TopicArn", self.settings.topicARN),
            ("Message", String(decoding: message.json, as: UTF8.self)),
        ].map { AWSSigV4.encode($0.0) + "=" + AWSSigV4.encode($0.1) }.joined(separator: "&")
        let body = Data(form.utf8)
        guard let endpoint = URL(string: self.settings.endpoint), let host = endpoint.host else {
            throw DeliveryFailure(description: "AWS_ENDPOINT_URL_SNS \(self.settings.endpoint) is not a URL")
        }
        let headers = AWSSigV4(region: self.settings.region, service: "sns").signedHeaders(
            method: "POST", host: host + (endpoint.port.map { ":\($0)" } ?? ""),
            path: endpoint.path.isEmpty ? "/" : endpoint.path, query: [],
            headers: [("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
            payloadHash: DigestHasher.hex(SHA256.hash(data: body)), credentials: try await self.credentials.credentials()
        )
        var request = HTTPClientRequest(url: self.settings.endpoint)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await self.http.execute(request, timeout: .seconds(10))
        let answer = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status == .ok, AWSXML.element("MessageId", in: answer) != nil else {
            let reason = AWSXML.element("Message", in: answer) ?? "HTTP \(response.status.code)"
            throw DeliveryFailure(description: "SNS Publish to \(self.settings.topicARN) failed: \(reason)")
        }
    }
}
