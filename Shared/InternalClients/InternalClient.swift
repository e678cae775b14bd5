import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Runtime

/// An HTTP client of one internal service: JSON calls and the mapping of its answers back to
/// `RegistryError`s. An unreachable service is a 503 `UNAVAILABLE`.
struct InternalClient: Sendable {
    let base: String
    let http: HTTPClient
    let service: String
    static let callTimeout = TimeAmount.seconds(30)

    /// `POST`s `input` as JSON to the call's path (for the upload session `id` when it names
    /// one) and decodes the JSON answer.
    func call<Input, Output>(
        _ call: InternalCall<Input, Output>, _ input: Input, id: UploadID? = nil, timeout: TimeAmount = Self.callTimeout
    ) async throws -> Output {
        let path = id.map { InternalBlobPaths.path(call.path, id: $0) } ?? call.path
        var request = HTTPClientRequest(url: self.base + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(input)))
        return try await self.json(request, timeout: timeout)
    }

    /// Sends `request` and decodes a 2xx JSON answer; a failure answer is rethrown.
    func json<Output: Decodable>(_ request: HTTPClientRequest, timeout: TimeAmount = Self.callTimeout) async throws -> Output {
        let response = try await self.execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: 16 * 1024 * 1024)
        try self.check(response.status, body: body)
        return try JSONDecoder().decode(Output.self, from: Data(buffer: body))
    }

    func execute(_ request: HTTPClientRequest, timeout: TimeAmount) async throws -> HTTPClientResponse {
        var request = request
        if let id = RequestID.current {
            request.headers.replaceOrAdd(name: "X-Request-Id", value: id)
        }
        do {
            return try await self.http.execute(request, timeout: timeout)
        } catch let error as RegistryError {
            throw error
        } catch {
            throw RegistryError(.unavailable, "the \(self.service) service is not reachable; try again shortly")
        }
    }

    /// Whether the service says it is ready.
    func isReady() async -> Bool {
        guard let response = try? await self.http.execute(HTTPClientRequest(url: self.base + HealthPaths.ready), timeout: .seconds(5))
        else { return false }
        return response.status == .ok
    }

    /// Throws the `RegistryError` a non-2xx answer carries.
    func check(_ status: HTTPResponseStatus, body: ByteBuffer) throws {
        guard !(200..<300).contains(status.code) else { return }
        if let error = try? JSONDecoder().decode(RegistryError.self, from: Data(buffer: body)) {
            throw error
        }
        throw RegistryError(.badGateway, "the \(self.service) service answered \(status.code)")
    }
}
