import CALMModels

/// What one HTTP request asks the scheduler to generate, already validated.
struct GenerationRequest: Sendable {
    let model: ServedModel
    let prompt: [Int]
    let maxTokens: Int
    let sampling: SamplingOptions
    let stops: [String]
    /// False: keep going past end-of-sequence (fixed-length runs, `"calm": {"ignore_eos": true}`).
    let stopAtEOS: Bool
    /// Most likely alternatives to report per token (nil: no log-probabilities).
    let topLogprobs: Int?
    /// Report per-token gate values (compositions).
    let gates: Bool
}

/// One generated token as the client sees it.
struct GeneratedToken: Sendable {
    let id: Int
    /// Text to append (may be empty while text is held back; see `StopText`).
    let delta: String
    /// The token's own text, for log-probabilities.
    let text: String
    let logprob: Float?
    let top: [(text: String, logprob: Float)]
    /// One value per `ServedModel.gateLabels` entry.
    let gates: [Float]?
}

enum FinishReason: String, Sendable {
    case stop, length
    /// Cut short by the server shutting down.
    case cancelled
}

/// What the scheduler sends back for one request, in order: tokens, then one `finished`.
enum GenerationEvent: Sendable {
    case token(GeneratedToken)
    /// Text held back until the end (after the last token).
    case finished(FinishReason, trailingText: String, promptTokens: Int, completionTokens: Int)
}
