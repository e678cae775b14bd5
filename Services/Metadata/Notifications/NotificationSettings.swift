import Foundation
import Runtime

/// Where tag changes are announced, from the environment.
///
/// - `API_SNS_TOPIC_ARN` (+ `API_SNS_REGION`, default the ARN's region): AWS SNS, as the original.
///   `AWS_ENDPOINT_URL_SNS` points at another endpoint; credentials as for S3 (`AWS_ACCESS_KEY_ID`…).
/// - `NOTIFICATION_WEBHOOK_URLS` (comma-separated) with `NOTIFICATION_WEBHOOK_SECRET`: JSON POSTs
///   signed with HMAC-SHA256 of the body.
/// - `NOTIFICATION_REGISTRY_NAME`: the `registry` field of each message (default the host name).
/// - `NOTIFICATION_RETRY_MAX_SECONDS`: longest wait between two attempts (default 300).
package struct NotificationSettings: Sendable, Equatable {
    package struct SNS: Sendable, Equatable {
        package var topicARN: String
        package var region: String
        package var endpoint: String
        package var credentials: AWSCredentialsProvider.Source
    }

    package struct Webhook: Sendable, Equatable {
        package var url: String
        package var secret: String

        package init(url: String, secret: String) {
            self.url = url
            self.secret = secret
        }
    }

    package var registry: String
    package var sns: SNS?
    package var webhooks: [Webhook]
    package var maximumRetryDelay: Duration
    /// How often an idle dispatcher looks for due notifications.
    package var pollInterval: Duration

    package init(
        registry: String = "pierone", sns: SNS? = nil, webhooks: [Webhook] = [], maximumRetryDelay: Duration = .seconds(300),
        pollInterval: Duration = .milliseconds(500)
    ) {
        self.registry = registry
        self.sns = sns
        self.webhooks = webhooks
        self.maximumRetryDelay = maximumRetryDelay
        self.pollInterval = pollInterval
    }

    package init(environment: EnvironmentReader) throws {
        self.init(
            registry: environment.string("NOTIFICATION_REGISTRY_NAME", default: ProcessInfo.processInfo.hostName),
            maximumRetryDelay: .seconds(try environment.integer("NOTIFICATION_RETRY_MAX_SECONDS", default: 300, range: 1...86400))
        )
        if let arn = environment.string("API_SNS_TOPIC_ARN") {
            let parts = arn.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count >= 6, parts[0] == "arn", parts[2] == "sns" else {
                throw ConfigurationError("API_SNS_TOPIC_ARN", "must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)")
            }
            let region = environment.string("API_SNS_REGION") ?? String(parts[3])
            self.sns = SNS(
                topicARN: arn, region: region,
                endpoint: environment.string("AWS_ENDPOINT_URL_SNS", default: "https://sns.\(region).amazonaws.com"),
                credentials: try AWSCredentialsProvider.Source(environment: environment, region: region)
            )
        } else if environment.string("API_SNS_REGION") != nil {
            throw ConfigurationError("API_SNS_TOPIC_ARN", "must be set when API_SNS_REGION is (the topic to publish to)")
        }
        let urls = (environment.string("NOTIFICATION_WEBHOOK_URLS") ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if !urls.isEmpty {
            guard let secret = environment.string("NOTIFICATION_WEBHOOK_SECRET"), secret.utf8.count >= 16 else {
                throw ConfigurationError(
                    "NOTIFICATION_WEBHOOK_SECRET", "must be set (16 characters or more) when NOTIFICATION_WEBHOOK_URLS is"
                )
            }
            for url in urls {
                guard let parsed = URL(string: url), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil else {
                    throw ConfigurationError("NOTIFICATION_WEBHOOK_URLS", "\(url) is not an http(s) URL")
                }
            }
            self.webhooks = urls.map { Webhook(url: $0, secret: secret) }
        }
    }

    /// The outbox sink name of each configured destination.
    package var sinkNames: [String] {
        (self.sns.map { ["sns:" + $0.topicARN] } ?? []) + self.webhooks.map { "webhook:" + $0.url }
    }
}
