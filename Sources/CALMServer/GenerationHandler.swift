import CALMSupport
import Foundation
import Hummingbird
import NIOCore

/// Answers `/v1/completions` and `/v1/chat/completions`: parse, queue, then either wait for
/// the whole answer or stream it as server-sent events ending in `data: [DONE]`.
struct GenerationHandler: Sendable {
    let parser: RequestParser
    let scheduler: Scheduler
    let metrics: ServerMetrics
    let maxBodyBytes: Int

    func handle(_ request: Request, endpoint: Endpoint, channel: any Channel) async throws -> Response {
        var request = request
        let tooLarge = APIError(.contentTooLarge, "the request body exceeds \(maxBodyBytes) bytes", code: "body_too_large")
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > maxBodyBytes { throw tooLarge }
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: maxBodyBytes) } catch is NIOTooManyBytesError { throw tooLarge }
        let parsed = try parser.parse(Array(body.readableBytesView), endpoint: endpoint)
        let submission: Submission
        do { submission = try scheduler.submit(parsed.generation) } catch {
            switch error {
            case .queueFull:
                throw APIError(.tooManyRequests, "the server is busy: \(scheduler.maxQueue) requests are already waiting; retry later",
                               type: "rate_limit_error", code: "queue_full")
            case .shuttingDown:
                throw APIError(.serviceUnavailable, "the server is shutting down", type: "server_error", code: "shutting_down")
            }
        }
        // A client that goes away cancels its request at once, not at the next failed write.
        let connection = await ClientGoneHandler.connection(of: channel)
        let watch = connection?.onGone { [metrics] in
            metrics.clientsGone.increment(by: 1)
            submission.cancel()
        }
        let format = ResponseFormat(parsed)
        guard parsed.stream else {
            defer { connection?.remove(watch) }
            return try await collect(submission.events, format: format)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: ResponseBody { writer in
                            defer { connection?.remove(watch) }
                            try await stream(submission.events, format: format, parsed: parsed, to: &writer)
                        })
    }

    /// Waits for every event (dropping `events` when the handler is cancelled cancels the request).
    private func collect(_ events: AsyncStream<GenerationEvent>, format: ResponseFormat) async throws -> Response {
        var tokens: [GeneratedToken] = []
        var text = ""
        for await event in events {
            switch event {
            case .token(let token):
                tokens.append(token)
                text += token.delta
            case .finished(let reason, let trailing, let promptTokens, _):
                text += trailing
                return Response.json(format.completion(tokens: tokens, text: text, finish: reason, promptTokens: promptTokens))
            }
        }
        throw CancellationError()
    }

    private func stream(_ events: AsyncStream<GenerationEvent>, format: ResponseFormat, parsed: ParsedRequest,
                        to writer: inout any ResponseBodyWriter) async throws {
        var first = true
        var iterator = events.makeAsyncIterator()
        while let event = await iterator.next() {
            let chunk: JSONValue
            var usage: JSONValue?
            switch event {
            case .token(let token):
                chunk = format.chunk(text: token.delta, tokens: [token], finish: nil, first: first)
            case .finished(let reason, let trailing, let promptTokens, let completionTokens):
                chunk = format.chunk(text: trailing, tokens: [], finish: reason, first: first)
                if parsed.streamUsage { usage = format.usageChunk(promptTokens: promptTokens, completionTokens: completionTokens) }
            }
            first = false
            // A write that fails ends this closure; the iterator, the last holder of the
            // stream, goes with it and cancels the request (if the connection watch has not).
            try await writer.write(ByteBuffer(string: "data: \(chunk.serialized())\n\n"))
            if let usage { try await writer.write(ByteBuffer(string: "data: \(usage.serialized())\n\n")) }
        }
        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        try await writer.finish(nil)
    }
}
