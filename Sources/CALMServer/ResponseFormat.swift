import CALMSupport
import Foundation

/// OpenAI response bodies for one request: the whole answer, or its stream chunks.
struct ResponseFormat {
    let request: ParsedRequest
    let id: String
    let created = Int(Date().timeIntervalSince1970)

    init(_ request: ParsedRequest) {
        self.request = request
        id = (request.endpoint == .chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.lowercased()
    }

    private var isChat: Bool { request.endpoint == .chat }
    private var model: ServedModel { request.generation.model }

    /// The complete answer once generation has finished.
    func completion(tokens: [GeneratedToken], text: String, finish: FinishReason, promptTokens: Int) -> JSONValue {
        var choice: [String: JSONValue] = ["index": .int(0), "finish_reason": .string(finish.rawValue)]
        if isChat {
            choice["message"] = .object(["role": .string("assistant"), "content": .string(text)])
        } else {
            choice["text"] = .string(text)
        }
        choice["logprobs"] = logprobs(tokens)
        if request.generation.gates {
            choice["calm"] = .object(["gate_labels": .array(model.gateLabels.map(JSONValue.string)),
                                      "gates": .array(tokens.map { .array(($0.gates ?? []).map { .double(Double($0)) }) })])
        }
        return .object([
            "id": .string(id), "object": .string(isChat ? "chat.completion" : "text_completion"), "created": .int(created),
            "model": .string(model.name), "choices": .array([.object(choice)]),
            "usage": usage(prompt: promptTokens, completion: tokens.count),
        ])
    }

    /// The chunk for one token (or, with `finish`, the last chunk, carrying held-back text).
    func chunk(text: String, tokens: [GeneratedToken], finish: FinishReason?, first: Bool) -> JSONValue {
        var choice: [String: JSONValue] = ["index": .int(0), "finish_reason": finish.map { .string($0.rawValue) } ?? .null]
        if isChat {
            var delta: [String: JSONValue] = ["content": .string(text)]
            if first { delta["role"] = .string("assistant") }
            choice["delta"] = .object(delta)
        } else {
            choice["text"] = .string(text)
        }
        choice["logprobs"] = logprobs(tokens)
        if request.generation.gates, let gates = tokens.first?.gates {
            choice["calm"] = .object(["gate_labels": .array(model.gateLabels.map(JSONValue.string)),
                                      "gates": .array([.array(gates.map { .double(Double($0)) })])])
        }
        return envelope(choices: [.object(choice)])
    }

    /// The last chunk when `stream_options.include_usage` asks for counts.
    func usageChunk(promptTokens: Int, completionTokens: Int) -> JSONValue {
        var out = envelope(choices: [])
        if case .object(var fields) = out {
            fields["usage"] = usage(prompt: promptTokens, completion: completionTokens)
            out = .object(fields)
        }
        return out
    }

    private func envelope(choices: [JSONValue]) -> JSONValue {
        .object(["id": .string(id), "object": .string(isChat ? "chat.completion.chunk" : "text_completion"),
                 "created": .int(created), "model": .string(model.name), "choices": .array(choices)])
    }

    private func usage(prompt: Int, completion: Int) -> JSONValue {
        .object(["prompt_tokens": .int(prompt), "completion_tokens": .int(completion), "total_tokens": .int(prompt + completion)])
    }

    /// Chat: `{"content": [{token, logprob, bytes, top_logprobs}]}`; completions: parallel arrays.
    private func logprobs(_ tokens: [GeneratedToken]) -> JSONValue {
        guard request.generation.topLogprobs != nil else { return .null }
        func number(_ x: Float?) -> JSONValue { x.map { .double(Double($0)) } ?? .null }
        func bytes(_ s: String) -> JSONValue { .array(Array(s.utf8).map { .int(Int($0)) }) }
        if isChat {
            return .object(["content": .array(tokens.map { token in
                .object(["token": .string(token.text), "logprob": number(token.logprob), "bytes": bytes(token.text),
                         "top_logprobs": .array(token.top.map {
                             .object(["token": .string($0.text), "logprob": .double(Double($0.logprob)), "bytes": bytes($0.text)])
                         })])
            })])
        }
        var offsets: [JSONValue] = []
        var offset = 0
        for token in tokens {
            offsets.append(.int(offset))
            offset += token.text.count
        }
        return .object([
            "tokens": .array(tokens.map { .string($0.text) }),
            "token_logprobs": .array(tokens.map { number($0.logprob) }),
            // Alternatives sharing a text keep the likelier one, as a JSON object must.
            "top_logprobs": .array(tokens.map { token in
                var best: [String: JSONValue] = [:]
                for alt in token.top where best[alt.text] == nil { best[alt.text] = .double(Double(alt.logprob)) }
                return .object(best)
            }),
            "text_offset": .array(offsets),
        ])
    }
}
