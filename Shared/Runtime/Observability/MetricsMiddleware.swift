import Hummingbird
import Prometheus

/// Measures every request: count by route template, method and status class; latency to the last
/// response byte; request and response body bytes.
package struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let service: String
    /// The route template of a request (a fixed set; never the raw path); nil: the route the
    /// router matched (`{id}` for a captured parameter), or `other` when none did.
    let template: (@Sendable (Request) -> String)?

    package init(service: String, template: (@Sendable (Request) -> String)? = nil) {
        self.service = service
        self.template = template
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let start = ContinuousClock.now
        let route = self.template?(request) ?? context.endpointPath ?? "other"
        let method = request.method.rawValue
        let service = self.service
        var request = request
        if request.method != .get, request.method != .head {
            let received = ServiceMetrics.bytes("request", service: service, route: route)
            request.body = RequestBody(asyncSequence: request.body.map { buffer in
                received.increment(by: Int64(buffer.readableBytes))
                return buffer
            })
        }
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            Self.record(service: service, route: route, method: method, status: status, since: start)
            throw error
        }
        var measured = response
        let body = response.body
        let sent = ServiceMetrics.bytes("response", service: service, route: route)
        let status = response.status.code
        if let length = body.contentLength, length <= 64 * 1024 {
            // Small bodies (manifests, JSON, errors) are written at once: count them now.
            sent.increment(by: Int64(length))
            Self.record(service: service, route: route, method: method, status: status, since: start)
            return response
        }
        measured.body = ResponseBody(contentLength: body.contentLength) { writer in
            do {
                try await body.write(CountingWriter(base: writer, counter: sent))
                Self.record(service: service, route: route, method: method, status: status, since: start)
            } catch {
                Self.record(service: service, route: route, method: method, status: status, since: start)
                throw error
            }
        }
        return measured
    }

    static func record(service: String, route: String, method: String, status: Int, since start: ContinuousClock.Instant) {
        ServiceMetrics.requests(service: service, route: route, method: method, status: "\(status / 100)xx").increment()
        ServiceMetrics.requestDuration(service: service, route: route, method: method).record(ContinuousClock.now - start)
    }
}

/// Forwards to a response writer, counting the bytes.
struct CountingWriter: ResponseBodyWriter {
    var base: any ResponseBodyWriter
    let counter: Counter

    mutating func write(_ buffer: ByteBuffer) async throws {
        self.counter.increment(by: Int64(buffer.readableBytes))
        try await self.base.write(buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await self.base.finish(trailingHeaders)
    }
}
