import Hummingbird

/// The OpenAPI document (`/openapi.json`) and the browsing page (`/ui/`), both embedded in the
/// binary. Neither needs credentials: the page asks the API with the visitor's token.
enum StaticPages {
    static func register(on router: Router<GatewayRequestContext>) {
        let openAPI = ByteBuffer(bytes: PackageResources.openapi_json)
        let page = ByteBuffer(bytes: PackageResources.ui_html)
        router.get("/openapi.json") { _, _ in Self.response(openAPI, type: "application/json") }
        router.get("/ui/") { _, _ in Self.response(page, type: "text/html; charset=utf-8") }
        router.get("/") { _, _ in Self.redirect("/ui/") }
    }

    static func response(_ body: ByteBuffer, type: String) -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: type, .contentLength: String(body.readableBytes), .cacheControl: "no-cache",
                // The page is self-contained: no script, style or connection leaves this origin.
                .contentSecurityPolicy: "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                    + "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
                .xContentTypeOptions: "nosniff",
            ],
            body: .init(byteBuffer: body)
        )
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .found, headers: [.location: location, .contentLength: "0"])
    }
}
