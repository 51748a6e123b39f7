import CALMSupport
import Hummingbird

/// The server's endpoints.
enum Routes {
    static func router(server: InferenceServer) -> Router<ServerRequestContext> {
        let router = Router(context: ServerRequestContext.self)
        router.add(middleware: OpenAIErrorMiddleware(metrics: server.metrics))
        if let key = server.configuration.apiKey { router.add(middleware: APIKeyMiddleware(apiKey: key)) }
        let generation = GenerationHandler(parser: RequestParser(catalog: server.catalog), scheduler: server.scheduler,
                                           metrics: server.metrics, maxBodyBytes: server.configuration.maxBodyBytes)
        router.get("/health") { _, _ in Response.json(.object(["status": .string("ok")])) }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: server.metrics.render())))
        }
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        router.get("/v1/models") { _, _ in Response.json(models(server.catalog)) }
        router.post("/v1/completions") { request, context in
            try await generation.handle(request, endpoint: .completions, channel: context.channel)
        }
        router.post("/v1/chat/completions") { request, context in
            try await generation.handle(request, endpoint: .chat, channel: context.channel)
        }
        return router
    }

    /// Every served model and composition, with its experts and context size.
    static func models(_ catalog: ModelCatalog) -> JSONValue {
        .object(["object": .string("list"), "data": .array(catalog.models.map { model in
            .object([
                "id": .string(model.name), "object": .string("model"), "created": .int(0), "owned_by": .string("calm"),
                "calm": .object([
                    "kind": .string(model.kind == .composition ? "composition" : "model"),
                    "experts": .array(model.experts.map(JSONValue.string)),
                    "context_length": .int(model.maxContext),
                    "chat_template": .bool(model.tokenizer.chatTemplate != nil),
                ]),
            ])
        })])
    }
}
