import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import Metadata
import NIOCore
import PierOneApp
import Runtime
import Testing
import TestSupport

/// The Prometheus text exposition format, parsed strictly: every line must be a comment, a
/// `# HELP`/`# TYPE` line or a sample `name{label="value",…} number`.
struct Exposition {
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var types: [String: String] = [:]
    var samples: [Sample] = []

    init(_ text: String) throws {
        let sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
        let label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
                    throw Failure(line: String(line))
                }
                self.types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let match = line.wholeMatch(of: sample), let value = Double(match.3) ?? (match.3 == "+Inf" ? .infinity : nil)
            else { throw Failure(line: String(line)) }
            var labels: [String: String] = [:]
            if let text = match.2 {
                for pair in text.matches(of: label) { labels[String(pair.1)] = String(pair.2) }
            }
            self.samples.append(Sample(name: String(match.1), labels: labels, value: value))
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var line: String
        var description: String { "not exposition format: \(self.line)" }
    }

    /// The samples of `name` whose labels include `labels`.
    func values(_ name: String, _ labels: [String: String] = [:]) -> [Double] {
        self.samples.filter { sample in
            sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value }
        }.map(\.value)
    }

    func sum(_ name: String, _ labels: [String: String] = [:]) -> Double { self.values(name, labels).reduce(0, +) }
}

@Suite struct MetricsTests {
    /// After a push and a pull, `/metrics` of the all-in-one registry has every family.
    @Test(arguments: Backend.allCases)
    func everyFamilyAfterAPushAndAPull(_ backend: Backend) async throws {
        let port = try PostgresCluster.freePort()
        try await RegistryHarness.withRegistry(backend, configure: { configuration in
            configuration.notifications = NotificationSettings(
                webhooks: [.init(url: "http://127.0.0.1:\(port)/hook", secret: "a-secret-long-enough")],
                pollInterval: .milliseconds(100)
            )
        }) { registry in
            let image = try await registry.pushImage(to: "team/app", reference: "1.0", config: #"{"m":1}"#, layers: ["layer"])
            let pulled = try await registry.request(.get, "/v2/team/app/manifests/1.0")
            #expect(pulled.status == .ok)
            let layer = DigestHasher.digest(of: ByteBuffer(string: "layer"))
            #expect(try await registry.request(.get, "/v2/team/app/blobs/\(layer)").status == .ok)
            #expect(try await registry.request(.get, "/v2/team/app/blobs/sha256:\(String(repeating: "0", count: 64))").status == .notFound)
            _ = image
            try await Task.sleep(for: .milliseconds(300))

            let response = try await registry.request(.get, "/metrics")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let metrics = try Exposition(String(buffer: response.body))

            #expect(metrics.types["pierone_http_requests_total"] == "counter")
            let uploads = ["service": "gateway", "route": "/v2/{name}/blobs/uploads/", "method": "POST", "status": "2xx"]
            #expect(metrics.sum("pierone_http_requests_total", uploads) >= 2)
            #expect(metrics.sum("pierone_http_requests_total", ["route": "/v2/{name}/blobs/{digest}", "status": "4xx"]) >= 1)
            #expect(metrics.sum("pierone_http_requests_total", ["route": "/v2/{name}/manifests/{reference}", "method": "PUT"]) >= 1)
            // Routes are templates: no raw path ever becomes a label.
            #expect(!metrics.samples.contains { $0.labels["route"]?.contains("team/app") == true })
            #expect(metrics.types["pierone_http_request_duration_seconds"] == "histogram")
            #expect(metrics.sum("pierone_http_request_duration_seconds_count", ["route": "/v2/{name}/manifests/{reference}"]) >= 2)
            #expect(!metrics.values("pierone_http_request_duration_seconds_bucket", ["le": "+Inf"]).isEmpty)
            #expect(metrics.sum("pierone_http_request_bytes_total", ["route": "/v2/{name}/blobs/uploads/{uuid}"]) >= 5)
            #expect(metrics.sum("pierone_http_response_bytes_total", ["route": "/v2/{name}/blobs/{digest}"]) >= 5)
            #expect(metrics.types["pierone_upload_sessions_open"] == "gauge")
            #expect(metrics.values("pierone_upload_sessions_open").count == 1)
            let database = backend == .sqlite ? "sqlite" : "postgres"
            #expect(metrics.values("pierone_database_pool_size", ["backend": database]).first ?? 0 > 0)
            #expect(metrics.values("pierone_database_connections_in_use", ["backend": database]).count == 1)
            #expect(metrics.sum("pierone_database_operation_duration_seconds_count", ["operation": "putManifest"]) >= 1)
            #expect(metrics.sum("pierone_storage_operation_duration_seconds_count", ["driver": "filesystem", "operation": "commit_upload"]) >= 2)
            #expect(metrics.sum("pierone_storage_operation_duration_seconds_count", ["operation": "read"]) >= 1)
            // Nobody listens on the webhook port: the change waits in the outbox (the gauge is
            // refreshed every second).
            #expect(metrics.types["pierone_notification_backlog"] == "gauge")
            var backlog = 0.0
            for _ in 0..<30 where backlog < 1 {
                let text = String(buffer: try await registry.request(.get, "/metrics").body)
                backlog = try Exposition(text).sum("pierone_notification_backlog", ["sink": Redaction.sink("webhook:http://127.0.0.1:\(port)/hook")])
                if backlog < 1 { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(backlog == 1)
        }
    }

    @Test func exposesNoUnboundedLabels() {
        #expect(Exposition.Failure(line: "x").description.contains("x"))
        #expect(throws: Exposition.Failure.self) { try Exposition("not a metric line") }
        #expect(throws: Exposition.Failure.self) { try Exposition("# TYPE x nonsense") }
    }
}
