import Foundation
import Hummingbird
import Logging
import NIOCore

/// `sprout serve`: the inference API on Hummingbird 2, with the web page at `/`.
public struct ServeOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Bearer token required on every endpoint except /healthz (nil: none).
    public var apiKey: String?
    public var maxBodyBytes = 10 << 20
    /// Seconds a connection may stay idle (a slow or stalled client) before it is closed.
    public var idleTimeoutSeconds: Int64 = 30
    /// Seconds between looks for newer checkpoints.
    public var reloadIntervalSeconds: Double = 5
    public init() {}
}

public enum SproutHTTPServer {
    /// Builds the application (tests drive it with HummingbirdTesting; `sprout serve` runs it).
    public static func application(service: InferenceService, options: ServeOptions, logger: Logger,
                                   onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in })
        -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: MetricsAndAuth(metrics: service.metrics, apiKey: options.apiKey))
        router.get("/") { _, _ in html(WebPage.html) }
        router.get("/healthz") { _, _ in respond(.json(200, ["status": "ok"])) }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: service.metrics.render())))
        }
        router.get("/v1/models") { _, _ in respond(service.models()) }
        router.get("/v1/models/{target}") { _, context in respond(service.model(try context.parameters.require("target"))) }
        router.post("/v1/models/{target}") { request, context in
            // TensorFlow Serving's verbs ride on the last path segment: NAME:classify, NAME:predict.
            let target = try context.parameters.require("target")
            guard let colon = target.lastIndex(of: ":") else {
                return respond(.error(404, "POST /v1/models/NAME:classify, NAME:predict, NAME:explain or NAME:recognize"))
            }
            let name = String(target[..<colon]), verb = target[target.index(after: colon)...]
            // A declared length over the limit is refused before reading: otherwise the client
            // holds the connection until the idle timeout while its body trickles in.
            if let declared = request.headers[.contentLength], (Int(declared) ?? .max) > options.maxBodyBytes {
                return respond(.error(413, "body of \(declared) bytes is over the limit of \(options.maxBodyBytes) (--max-body-bytes)"))
            }
            var request = request
            let buffer = try await request.collectBody(upTo: options.maxBodyBytes)
            let body = [UInt8](buffer: buffer)
            switch verb {
            case "classify":
                let k = request.uri.queryParameters.get("k", as: Int.self)
                return respond(await service.classify(name, body: body, contentType: request.headers[.contentType], topK: k))
            case "predict":
                return respond(await service.predict(name, body: body))
            case "explain":
                let query = request.uri.queryParameters
                return respond(await service.explain(name, body: body, contentType: request.headers[.contentType],
                                                     method: query.get("method").map { String($0) },
                                                     className: query.get("class").map { String($0) }))
            case "recognize":
                let beam = request.uri.queryParameters.get("beam", as: Int.self)
                return respond(await service.recognize(name, body: body, contentType: request.headers[.contentType], beam: beam))
            default:
                return respond(.error(404, "unknown verb '\(verb)' (classify, predict, explain, recognize)"))
            }
        }
        var app = Application(router: router,
                              server: .http1(configuration: .init(idleTimeout: .seconds(options.idleTimeoutSeconds))),
                              configuration: .init(address: .hostname(options.host, port: options.port), serverName: "sprout"),
                              onServerRunning: onServerRunning, logger: logger)
        app.addServices(ReloadService(service: service, interval: options.reloadIntervalSeconds, logger: logger))
        return app
    }

    static func respond(_ r: APIResponse) -> Response {
        Response(status: .init(code: r.status), headers: [.contentType: r.contentType],
                 body: .init(byteBuffer: ByteBuffer(bytes: r.body)))
    }

    static func html(_ page: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: page)))
    }
}

/// Counts every request by endpoint and status, times it, turns thrown errors into JSON
/// (413 for a body over the limit, 404 for unknown paths) and checks the bearer token.
struct MetricsAndAuth<Context: RequestContext>: RouterMiddleware {
    let metrics: ServeMetrics
    let apiKey: String?

    /// Equal strings, in time that depends on their lengths only: a byte-by-byte comparison that
    /// stops at the first difference tells a client, by its timing, how much of a key it guessed.
    static func sameSecret(_ given: String, _ expected: String) -> Bool {
        let a = Array(given.utf8), b = Array(expected.utf8)
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0 && a.count == b.count
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = Date()
        let path = request.uri.path
        let endpoint = Self.endpoint(path)
        var response: Response
        if let apiKey, path != "/healthz", !Self.sameSecret(request.headers[.authorization] ?? "", "Bearer \(apiKey)") {
            response = SproutHTTPServer.respond(.error(401, "missing or wrong API key: send 'Authorization: Bearer <key>'"))
            response.headers[.wwwAuthenticate] = "Bearer"
        } else {
            do {
                response = try await next(request, context)
            } catch let error as HTTPResponseError {
                let status = Int(error.status.code)
                let message = status == 413 ? "request body over the limit" : status == 404 ? "no such endpoint: \(path)" : "\(error)"
                response = SproutHTTPServer.respond(.error(status, message))
            } catch {
                response = SproutHTTPServer.respond(.error(400, "\(error)"))
            }
        }
        metrics.record(endpoint: endpoint, status: Int(response.status.code), seconds: Date().timeIntervalSince(started))
        return response
    }

    /// A label with bounded cardinality: the route, not the raw path.
    static func endpoint(_ path: String) -> String {
        if path == "/" || path == "/healthz" || path == "/metrics" || path == "/v1/models" { return path }
        if path.hasPrefix("/v1/models/") {
            if path.hasSuffix(":classify") { return "/v1/models/{name}:classify" }
            if path.hasSuffix(":predict") { return "/v1/models/{name}:predict" }
            return "/v1/models/{name}"
        }
        return "other"
    }
}
