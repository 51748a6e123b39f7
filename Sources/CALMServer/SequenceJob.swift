import CALMComposition
import CALMModels
import Foundation

/// One request being decoded: its caches, sampler, generated tokens and the channel back to
/// the HTTP handler. Touched only on the scheduler's thread, except `isCancelled`.
final class SequenceJob: @unchecked Sendable {
    let request: GenerationRequest
    let continuation: AsyncStream<GenerationEvent>.Continuation
    let submitted = DispatchTime.now().uptimeNanoseconds
    private let cancelLock = NSLock()
    private var cancelled = false

    private var sampler: Sampler
    private var stopText: StopText
    private(set) var generated: [Int] = []
    /// The token to feed in the next step.
    private(set) var lastToken = 0
    private(set) var sequence: AnchorSequence?
    private var gateRecorder: GateRecorder?
    private var lastTokenTime: UInt64 = 0
    private var prefilled = false
    private(set) var isFinished = false

    init(request: GenerationRequest, continuation: AsyncStream<GenerationEvent>.Continuation) {
        self.request = request
        self.continuation = continuation
        sampler = Sampler(request.sampling)
        stopText = StopText(stops: request.stops)
    }

    var isCancelled: Bool { cancelLock.withLock { cancelled } }
    func cancel() { cancelLock.withLock { cancelled = true } }

    var anchor: ObjectIdentifier { ObjectIdentifier(request.model.anchor) }

    /// Its caches, sized for this request; the prompt is fed with the next step.
    func begin() {
        let model = request.model
        let capacity = request.prompt.count + request.maxTokens
        if let composed = model.composed {
            gateRecorder = request.gates ? GateRecorder() : nil
            sequence = .composed(composed, composed.startDecoding(capacity: capacity), gates: gateRecorder)
        } else {
            sequence = .plain(model.anchor.startDecoding(capacity: capacity))
        }
    }

    /// What the next step feeds: the prompt first, then each sampled token.
    var pendingTokens: [Int] { prefilled ? [lastToken] : request.prompt }

    /// Samples the next token from `logits`, reports it and decides whether to go on.
    func accept(logits: [Float], metrics: ServerMetrics) {
        let now = DispatchTime.now().uptimeNanoseconds
        if !prefilled {
            prefilled = true
            metrics.promptTokens.increment(by: request.prompt.count)
        }
        if generated.isEmpty {
            metrics.timeToFirstToken.observe(Double(now - submitted) / 1e9)
        } else {
            metrics.perTokenLatency.observe(Double(now - lastTokenTime) / 1e9)
        }
        lastTokenTime = now
        let gates = takeGates()
        let next = sampler.sample(logits)
        if request.stopAtEOS, next == request.model.tokenizer.eosID { return finish(.stop) }
        generated.append(next)
        lastToken = next
        metrics.completionTokens.increment(by: 1)
        let tokenizer = request.model.tokenizer
        let (delta, stopped) = stopText.advance(fullText: tokenizer.decode(generated))
        var logprob: Float?
        var top: [(text: String, logprob: Float)] = []
        if let k = request.topLogprobs {
            let scores = LogProbabilities(logits)
            logprob = scores[next]
            top = scores.top(k).map { (tokenizer.decode([$0.id]), $0.logprob) }
        }
        continuation.yield(.token(GeneratedToken(id: next, delta: delta, text: tokenizer.decode([next]), logprob: logprob,
                                                  top: top, gates: gates)))
        if stopped { return finish(.stop, flush: false) }
        if generated.count >= request.maxTokens { finish(.length) }
    }

    /// Ends the request: trailing text, counts, and the stream closes.
    func finish(_ reason: FinishReason, flush: Bool = true) {
        guard !isFinished else { return }
        isFinished = true
        let trailing = flush ? stopText.finish(fullText: request.model.tokenizer.decode(generated)) : ""
        continuation.yield(.finished(reason, trailingText: trailing, promptTokens: request.prompt.count,
                                     completionTokens: generated.count))
        continuation.finish()
        sequence = nil  // caches freed now, not when the handler lets go
    }

    /// Stops without a final event (the client is gone).
    func drop() {
        isFinished = true
        continuation.finish()
        sequence = nil
    }

    /// The gate of each connection at the position just fed (the one whose logits are being sampled).
    private func takeGates() -> [Float]? {
        guard let recorder = gateRecorder else { return nil }
        defer { recorder.reset() }
        return request.model.gateKeys.map { recorder.values[$0.key]?.last ?? 0 }
    }
}

/// Log-softmax of one row of logits, computed once per token when log-probabilities are asked for.
struct LogProbabilities {
    let logits: [Float]
    let logNormalizer: Float

    init(_ logits: [Float]) {
        self.logits = logits
        let maximum = logits.max() ?? 0
        let total = logits.reduce(Double(0)) { $0 + exp(Double($1 - maximum)) }
        logNormalizer = maximum + Float(log(total))
    }

    subscript(id: Int) -> Float { logits[id] - logNormalizer }

    /// The `k` most likely tokens, most likely first (ties: lower id first).
    func top(_ k: Int) -> [(id: Int, logprob: Float)] {
        guard k > 0 else { return [] }
        var best: [Int] = []
        for id in logits.indices {
            guard best.count < k || logits[id] > logits[best[best.count - 1]] else { continue }
            let at = best.firstIndex { logits[id] > logits[$0] } ?? best.count
            best.insert(id, at: at)
            if best.count > k { best.removeLast() }
        }
        return best.map { ($0, self[$0]) }
    }
}
