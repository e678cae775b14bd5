import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Where the S3 driver and the SNS sink get their AWS credentials, in the order the AWS SDKs look:
///
/// 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`): used as given.
/// 2. `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (Kubernetes service accounts, IRSA): the token
///    file is read again and exchanged at STS (`AssumeRoleWithWebIdentity`) for each refresh.
/// 3. The EC2 instance metadata service, IMDSv2 (session token first, then the role's credentials).
///
/// Temporary credentials are refreshed `refreshMargin` before they expire, by the first caller
/// that finds them due; the others wait for that one refresh instead of starting their own.
package actor AWSCredentialsProvider {
    package enum Source: Sendable, Equatable {
        case fixed(AWSCredentials)
        case webIdentity(tokenFile: String, roleARN: String, sessionName: String, stsEndpoint: String)
        case instanceMetadata(endpoint: String)
    }

    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    package let source: Source
    private let http: HTTPClient
    private let refreshMargin: TimeInterval
    private var current: (credentials: AWSCredentials, expiration: Date?)?
    private var refreshing: Task<(AWSCredentials, Date?), any Error>?

    package init(source: Source, http: HTTPClient, refreshMargin: TimeInterval = 300) {
        self.source = source
        self.http = http
        self.refreshMargin = refreshMargin
        if case .fixed(let credentials) = source { self.current = (credentials, nil) }
    }

    /// Valid credentials, fetched or refreshed when they are missing or about to expire.
    package func credentials() async throws -> AWSCredentials {
        if let current, current.expiration.map({ $0.timeIntervalSinceNow > self.refreshMargin }) ?? true {
            return current.credentials
        }
        if let refreshing { return try await refreshing.value.0 }
        let task = Task { [source, http] in try await Self.fetch(source, http: http) }
        self.refreshing = task
        defer { self.refreshing = nil }
        let fetched = try await task.value
        self.current = fetched
        return fetched.0
    }

    package static func fetch(_ source: Source, http: HTTPClient) async throws -> (AWSCredentials, Date?) {
        switch source {
        case .fixed(let credentials):
            return (credentials, nil)
        case .webIdentity(let tokenFile, let roleARN, let sessionName, let stsEndpoint):
            return try await self.assumeRole(
                tokenFile: tokenFile, roleARN: roleARN, sessionName: sessionName, endpoint: stsEndpoint, http: http
            )
        case .instanceMetadata(let endpoint):
            return try await self.instanceMetadata(endpoint: endpoint, http: http)
        }
    }

    /// STS `AssumeRoleWithWebIdentity`: an unsigned form POST carrying the projected token.
    static func assumeRole(
        tokenFile: String, roleARN: String, sessionName: String, endpoint: String, http: HTTPClient
    ) async throws -> (AWSCredentials, Date?) {
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
            throw Failure(description: "AWS_WEB_IDENTITY_TOKEN_FILE: cannot read \(tokenFile)")
        }
        let form = [
            ("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", roleARN),
            ("RoleSessionName", sessionName), ("WebIdentityToken", token.trimmingCharacters(in: .whitespacesAndNewlines)),
        ].map { AWSSigV4.encode($0.0) + "=" + AWSSigV4.encode($0.1) }.joined(separator: "&")
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: form))
        let response = try await http.execute(request, timeout: .seconds(10))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status == .ok, let accessKey = AWSXML.element("AccessKeyId", in: body),
              let secret = AWSXML.element("SecretAccessKey", in: body)
        else {
            let reason = AWSXML.element("Message", in: body) ?? "HTTP \(response.status.code)"
            throw Failure(description: "STS AssumeRoleWithWebIdentity for AWS_ROLE_ARN=\(roleARN) failed: \(reason)")
        }
        let credentials = AWSCredentials(
            accessKeyID: accessKey, secretAccessKey: secret,
            sessionToken: AWSXML.element("SessionToken", in: body).map(AWSXML.unescape)
        )
        return (credentials, AWSXML.element("Expiration", in: body).flatMap(Self.parseDate))
    }

    /// IMDSv2: a session token (PUT), the instance profile's role name, then its credentials.
    static func instanceMetadata(endpoint: String, http: HTTPClient) async throws -> (AWSCredentials, Date?) {
        let base = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        var tokenRequest = HTTPClientRequest(url: base + "/latest/api/token")
        tokenRequest.method = .PUT
        tokenRequest.headers.add(name: "X-aws-ec2-metadata-token-ttl-seconds", value: "21600")
        let token = try await self.text(tokenRequest, http: http, what: "IMDSv2 session token")
        func get(_ path: String, _ what: String) async throws -> String {
            var request = HTTPClientRequest(url: base + path)
            request.headers.add(name: "X-aws-ec2-metadata-token", value: token)
            return try await self.text(request, http: http, what: what)
        }
        let roles = try await get("/latest/meta-data/iam/security-credentials/", "instance profile role")
        guard let role = roles.split(whereSeparator: \.isNewline).first.map(String.init) else {
            throw Failure(description: "the instance metadata service lists no instance profile role")
        }
        let json = try await get("/latest/meta-data/iam/security-credentials/\(role)", "role credentials")
        struct Answer: Decodable {
            var AccessKeyId: String
            var SecretAccessKey: String
            var Token: String?
            var Expiration: String?
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(json.utf8)) else {
            throw Failure(description: "the instance metadata service answered unreadable credentials for role \(role)")
        }
        return (
            AWSCredentials(accessKeyID: answer.AccessKeyId, secretAccessKey: answer.SecretAccessKey, sessionToken: answer.Token),
            answer.Expiration.flatMap(Self.parseDate)
        )
    }

    private static func text(_ request: HTTPClientRequest, http: HTTPClient, what: String) async throws -> String {
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(5))
        } catch {
            throw Failure(description: "instance metadata service (\(request.url)) unreachable for the \(what): \(error)")
        }
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status == .ok else {
            throw Failure(description: "instance metadata service answered \(response.status.code) for the \(what)")
        }
        return body
    }

    package static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}

extension AWSCredentialsProvider.Source {
    /// The first source the environment configures, in the AWS SDKs' order.
    package init(environment: EnvironmentReader, region: String) throws {
        if let accessKey = environment.string("AWS_ACCESS_KEY_ID") {
            guard let secret = environment.string("AWS_SECRET_ACCESS_KEY") else {
                throw ConfigurationError("AWS_SECRET_ACCESS_KEY", "must be set together with AWS_ACCESS_KEY_ID")
            }
            self = .fixed(AWSCredentials(
                accessKeyID: accessKey, secretAccessKey: secret, sessionToken: environment.string("AWS_SESSION_TOKEN")
            ))
            return
        }
        if let tokenFile = environment.string("AWS_WEB_IDENTITY_TOKEN_FILE") {
            guard let role = environment.string("AWS_ROLE_ARN") else {
                throw ConfigurationError("AWS_ROLE_ARN", "must be set together with AWS_WEB_IDENTITY_TOKEN_FILE")
            }
            self = .webIdentity(
                tokenFile: tokenFile, roleARN: role,
                sessionName: environment.string("AWS_ROLE_SESSION_NAME", default: "pierone"),
                stsEndpoint: environment.string("AWS_ENDPOINT_URL_STS", default: "https://sts.\(region).amazonaws.com")
            )
            return
        }
        self = .instanceMetadata(
            endpoint: environment.string("AWS_EC2_METADATA_SERVICE_ENDPOINT", default: "http://169.254.169.254")
        )
    }
}
