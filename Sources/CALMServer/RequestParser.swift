import CALMModels
import CALMSupport
import CALMTokenizers

/// The two generation endpoints.
enum Endpoint: String, Sendable {
    case completions = "/v1/completions"
    case chat = "/v1/chat/completions"
}

/// A generation request as the HTTP layer needs it: what to generate and how to answer.
struct ParsedRequest: Sendable {
    let endpoint: Endpoint
    let generation: GenerationRequest
    let stream: Bool
    /// `stream_options.include_usage`: a last chunk with token counts.
    let streamUsage: Bool
}

/// Reads an OpenAI completions or chat request, strictly: every problem is one 400 (or a 404
/// for an unknown model) naming the field.
struct RequestParser {
    let catalog: ModelCatalog
    /// Largest `max_tokens` accepted before the context check.
    static let maxTokensLimit = 1 << 20

    func parse(_ body: [UInt8], endpoint: Endpoint) throws(APIError) -> ParsedRequest {
        var fields = try RequestFields(body: body)
        let modelName = try fields.requiredString("model")
        let input: PromptInput = endpoint == .chat ? .messages(try Self.messages(fields.raw("messages")))
                                                   : try Self.prompt(fields.raw("prompt"))
        var maxTokens = try fields.int("max_tokens", in: 1...Self.maxTokensLimit)
        if endpoint == .chat, let m = try fields.int("max_completion_tokens", in: 1...Self.maxTokensLimit) { maxTokens = m }
        let temperature = try fields.number("temperature", in: 0...2) ?? 1
        let topP = try fields.number("top_p", in: 0...1)
        if topP == 0 { throw APIError.badRequest("'top_p' must be greater than 0", param: "top_p") }
        let seed = try fields.int("seed", in: Int.min...Int.max)
        let stops = try Self.stops(fields.raw("stop"))
        let stream = try fields.bool("stream") ?? false
        let streamUsage = try Self.streamUsage(fields.raw("stream_options"))
        let topLogprobs: Int?
        if endpoint == .chat {
            let wanted = try fields.bool("logprobs") ?? false
            let top = try fields.int("top_logprobs", in: 0...20)
            topLogprobs = wanted ? (top ?? 0) : nil
        } else {
            topLogprobs = try fields.int("logprobs", in: 0...20)
        }
        let calm = try CalmOptions(fields.raw("calm"))
        try fields.acceptNeutral()
        if endpoint == .completions {
            if try fields.bool("echo") == true { throw APIError.badRequest("'echo' is not supported", param: "echo") }
            if let bestOf = try fields.int("best_of", in: 1...1), bestOf != 1 { throw APIError.badRequest("'best_of' must be 1") }
        }
        try fields.rejectUnknown()

        guard let model = catalog.model(named: modelName) else {
            throw APIError(.notFound, "the model '\(modelName)' does not exist (served: \(catalog.models.map(\.name).joined(separator: ", ")))",
                           param: "model", code: "model_not_found")
        }
        if calm.gates, model.composed == nil {
            throw APIError.badRequest("'calm.gates' needs a composition; '\(modelName)' is a plain model", param: "calm")
        }
        let prompt = try input.tokens(for: model)
        let room = model.maxContext - prompt.count
        guard room > 0 else {
            throw APIError(.badRequest, "the prompt has \(prompt.count) tokens; the context of '\(modelName)' holds \(model.maxContext), leaving no room to generate",
                           param: endpoint == .chat ? "messages" : "prompt", code: "context_length_exceeded")
        }
        // OpenAI's defaults: 16 tokens for completions, the rest of the context for chat.
        let budget = maxTokens ?? (endpoint == .chat ? room : min(16, room))
        guard budget <= room else {
            throw APIError(.badRequest, "'max_tokens' is \(budget), but the prompt (\(prompt.count) tokens) leaves room for \(room) in the context of \(model.maxContext)",
                           param: "max_tokens", code: "context_length_exceeded")
        }
        let sampling = SamplingOptions(temperature: Float(temperature), topP: topP.map(Float.init),
                                       seed: seed.map { UInt64(bitPattern: Int64($0)) } ?? UInt64.random(in: 0...UInt64.max))
        let generation = GenerationRequest(model: model, prompt: prompt, maxTokens: budget, sampling: sampling, stops: stops,
                                           stopAtEOS: !calm.ignoreEOS, topLogprobs: topLogprobs, gates: calm.gates)
        return ParsedRequest(endpoint: endpoint, generation: generation, stream: stream, streamUsage: streamUsage)
    }

    /// A completions prompt (text, one text in an array, or token ids) or chat messages.
    enum PromptInput {
        case text(String)
        case tokens([Int])
        case messages([ChatTemplate.Message])

        func tokens(for model: ServedModel) throws(APIError) -> [Int] {
            let tokenizer = model.tokenizer
            let ids: [Int]
            switch self {
            case .text(let text):
                // As `calm generate` and training begin a sequence: <bos> then the text.
                ids = tokenizer.encodeWithBOS(text)
            case .tokens(let given):
                guard let bad = given.first(where: { $0 < 0 || $0 >= model.anchor.config.vocabSize }) else { return given }
                throw APIError.badRequest("token id \(bad) is outside the vocabulary of \(model.anchor.config.vocabSize)", param: "prompt")
            case .messages(let messages):
                guard let source = tokenizer.chatTemplate else {
                    throw APIError.badRequest("the model '\(model.name)' has no chat template; use /v1/completions", param: "model")
                }
                do {
                    let text = try ChatTemplate(source).render(messages, addGenerationPrompt: true,
                                                               bosToken: tokenizer.bosID.flatMap(tokenizer.tokenText) ?? "",
                                                               eosToken: tokenizer.eosID.flatMap(tokenizer.tokenText) ?? "")
                    ids = tokenizer.encode(text)
                } catch {
                    throw APIError.badRequest("the chat template of '\(model.name)' failed on these messages: \(error)", param: "messages")
                }
            }
            guard !ids.isEmpty else { throw APIError.badRequest("the prompt is empty", param: "prompt") }
            return ids
        }
    }

    static func prompt(_ value: JSONValue?) throws(APIError) -> PromptInput {
        switch value {
        case .string(let text)?: return .text(text)
        case .array(let items)? where items.count == 1 && items[0].string != nil: return .text(items[0].string ?? "")
        case .array(let items)? where !items.isEmpty && items.allSatisfy({ $0.int != nil }): return .tokens(items.compactMap(\.int))
        case nil: throw APIError.badRequest("'prompt' is required", param: "prompt")
        default: throw APIError.badRequest("'prompt' must be a string, an array of one string, or an array of token ids", param: "prompt")
        }
    }

    static func messages(_ value: JSONValue?) throws(APIError) -> [ChatTemplate.Message] {
        guard let items = value?.array, !items.isEmpty else {
            throw APIError.badRequest("'messages' must be a non-empty array", param: "messages")
        }
        var out: [ChatTemplate.Message] = []
        for (i, item) in items.enumerated() {
            let param = "messages[\(i)]"
            guard let object = item.object else { throw APIError.badRequest("\(param) must be an object", param: param) }
            guard let role = object["role"]?.string, ["system", "developer", "user", "assistant"].contains(role) else {
                throw APIError.badRequest("\(param).role must be one of system, developer, user, assistant", param: param)
            }
            let content: String
            switch object["content"] {
            case .string(let text)?: content = text
            case .array(let parts)?:
                // Text parts only, joined as the content string.
                var texts: [String] = []
                for part in parts {
                    guard part["type"]?.string == "text", let text = part["text"]?.string else {
                        throw APIError.badRequest("\(param).content parts must be {\"type\": \"text\", \"text\": ...}", param: param)
                    }
                    texts.append(text)
                }
                content = texts.joined()
            default: throw APIError.badRequest("\(param).content must be a string or an array of text parts", param: param)
            }
            if let extra = object.keys.first(where: { !["role", "content", "name"].contains($0) }) {
                throw APIError.badRequest("\(param) has an unknown field '\(extra)'", param: param)
            }
            out.append(ChatTemplate.Message(role: role == "developer" ? "system" : role, content: content))
        }
        return out
    }

    static func stops(_ value: JSONValue?) throws(APIError) -> [String] {
        switch value {
        case nil: return []
        case .string(let s)?: return [s]
        case .array(let items)? where items.count <= 4 && items.allSatisfy({ $0.string != nil }): return items.compactMap(\.string)
        default: throw APIError.badRequest("'stop' must be a string or an array of up to 4 strings", param: "stop")
        }
    }

    static func streamUsage(_ value: JSONValue?) throws(APIError) -> Bool {
        guard let value else { return false }
        guard let object = value.object, object.keys.allSatisfy({ $0 == "include_usage" }) else {
            throw APIError.badRequest("'stream_options' must be an object with only 'include_usage'", param: "stream_options")
        }
        switch object["include_usage"] {
        case nil, .null?: return false
        case .bool(let b)?: return b
        default: throw APIError.badRequest("'stream_options.include_usage' must be a boolean", param: "stream_options")
        }
    }
}

/// The `"calm"` extension object: `{"gates": bool, "ignore_eos": bool}`.
struct CalmOptions {
    var gates = false
    var ignoreEOS = false

    init(_ value: JSONValue?) throws(APIError) {
        guard let value else { return }
        guard let object = value.object else { throw APIError.badRequest("'calm' must be an object", param: "calm") }
        for (key, field) in object {
            guard let flag = field.bool else { throw APIError.badRequest("'calm.\(key)' must be a boolean", param: "calm") }
            switch key {
            case "gates": gates = flag
            case "ignore_eos": ignoreEOS = flag
            default: throw APIError.badRequest("unknown field 'calm.\(key)' (known: gates, ignore_eos)", param: "calm")
            }
        }
    }
}
