import Contracts
import Foundation
import Hummingbird

/// Renders failures of the internal API as a JSON `RegistryError` with its status, so the
/// gateway's client can rethrow exactly what the service threw. Other errors become 500
/// `UNKNOWN`; their cause is logged here.
package struct InternalErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    package init() {}

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as RegistryError {
            return Self.render(error)
        } catch let error as HTTPError {
            return Self.render(RegistryError(.unknown, error.body ?? error.status.reasonPhrase, status: error.status.code))
        } catch {
            context.logger.error("internal request failed", metadata: ["error": "\(String(reflecting: error))"])
            return Self.render(RegistryError(.unknown))
        }
    }

    static func render(_ error: RegistryError) -> Response {
        let json = (try? JSONEncoder().encode(error)) ?? Data()
        return Response(
            status: .init(code: error.status),
            headers: [.contentType: "application/json", .contentLength: String(json.count)],
            body: .init(byteBuffer: ByteBuffer(bytes: json))
        )
    }
}

/// JSON in and out of the internal API.
package enum InternalJSON {
    /// Largest JSON request body (a manifest put carries up to 4 MiB as base64).
    package static let maximumBody = 8 * 1024 * 1024

    package static func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        let body = try await request.body.collect(upTo: Self.maximumBody)
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: body))
        } catch {
            throw RegistryError(.unknown, "malformed internal request: \(error)", status: 400)
        }
    }

    package static func response(_ value: some Encodable) throws -> Response {
        let json = try JSONEncoder().encode(value)
        return Response(
            status: .ok, headers: [.contentType: "application/json", .contentLength: String(json.count)],
            body: .init(byteBuffer: ByteBuffer(bytes: json))
        )
    }
}

/// `GET /health/live` and `GET /health/ready`.
package enum HealthRoutes {
    package static func register<Context: RequestContext>(
        on router: Router<Context>, ready: @escaping @Sendable () async -> Bool
    ) {
        router.get(RouterPath(HealthPaths.live)) { _, _ in Response(status: .ok, headers: [.contentLength: "0"]) }
        router.get(RouterPath(HealthPaths.ready)) { _, _ in
            Response(status: await ready() ? .ok : .serviceUnavailable, headers: [.contentLength: "0"])
        }
    }
}
