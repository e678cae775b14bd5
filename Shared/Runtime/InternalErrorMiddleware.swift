import Contracts
import Foundation
import Hummingbird
import NIOFoundationCompat

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
        } catch {
            return Self.render(ErrorMapping.registryError(error, logger: context.logger))
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
            throw RegistryError(.requestInvalid, "malformed internal request: \(error)")
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

extension Router {
    /// Registers the server side of `call`: `POST` on its path, the JSON body decoded as its
    /// request type, `handle`'s answer encoded as its answer type.
    package func on<Input, Output>(
        _ call: InternalCall<Input, Output>,
        _ handle: @escaping @Sendable (Input, Request, Context) async throws -> Output
    ) {
        self.post(RouterPath(call.path)) { request, context in
            try InternalJSON.response(try await handle(try await InternalJSON.decode(Input.self, from: request), request, context))
        }
    }
}
