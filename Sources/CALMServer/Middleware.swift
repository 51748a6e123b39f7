import CALMSupport
import Foundation
import HTTPTypes
import Hummingbird

/// Turns every error into OpenAI's error JSON (unknown routes included) and counts answers.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = error.response
        } catch let error as HTTPError {
            let type = error.status == .notFound ? "not_found_error" : "invalid_request_error"
            let message = error.status == .notFound ? "no route \(request.method) \(request.uri.path)" : (error.body ?? "\(error.status)")
            response = APIError(error.status, message, type: type).response
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            response = APIError(.internalServerError, "internal error: \(error)", type: "server_error").response
        }
        metrics.countRequest(endpoint: Self.endpointLabel(request.uri.path), status: response.status.code)
        return response
    }

    /// Known paths as themselves, anything else as "other" (bounded label values).
    static func endpointLabel(_ path: String) -> String {
        ["/health", "/metrics", "/openapi.json", "/v1/models", "/v1/completions", "/v1/chat/completions"].contains(path) ? path : "other"
    }
}

/// With an API key set, `/v1/...` needs `Authorization: Bearer KEY`; keys are compared in
/// constant time (digests of equal length, every byte looked at).
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keyDigest: [UInt8]

    init(apiKey: String) { keyDigest = Array(ContentDigest.hex(of: Array(apiKey.utf8)).utf8) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/v1/") else { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        guard header.hasPrefix("Bearer "), Self.matches(String(header.dropFirst(7)), keyDigest) else {
            throw APIError(.unauthorized, header.isEmpty ? "missing API key: send Authorization: Bearer KEY" : "invalid API key",
                           type: "authentication_error", code: "invalid_api_key")
        }
        return try await next(request, context)
    }

    static func matches(_ given: String, _ expected: [UInt8]) -> Bool {
        let digest = Array(ContentDigest.hex(of: Array(given.utf8)).utf8)
        var difference: UInt8 = 0
        for (a, b) in zip(digest, expected) { difference |= a ^ b }
        return difference == 0
    }
}
