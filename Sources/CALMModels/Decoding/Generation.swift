import CALMTensor
import Foundation

/// A generation request that cannot be served (bad options, context too long).
public struct GenerationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}

/// A model that can be fed tokens incrementally, keeping its own caches in `State`.
/// The plain LM and CALM compositions both conform, so one generation loop serves both.
public protocol IncrementalDecoder {
    associatedtype State
    var vocabularySize: Int { get }
    /// The longest sequence the decoder can hold.
    var maxContext: Int { get }
    /// Fresh caches for up to `capacity` positions (at most `maxContext`).
    func startDecoding(capacity: Int) -> State
    /// Feeds `tokens` after everything fed before and returns the logits that follow the last one.
    func feed(_ tokens: [Int], state: State) -> [Float]
}

extension TransformerLM: IncrementalDecoder {
    public var vocabularySize: Int { config.vocabSize }
    public var maxContext: Int { config.maxPositions }
    public func startDecoding(capacity: Int) -> KVCache { makeCache(capacity: min(capacity, maxContext)) }

    public func feed(_ tokens: [Int], state cache: KVCache) -> [Float] {
        withoutGradients { lastPositionLogits(TokenBatch(tokens), cache: cache) }
    }
}

extension IncrementalDecoder {
    /// Generates up to `maxTokens` tokens after `prompt`, stopping early at `stopToken`.
    /// Every step feeds only the new token: earlier positions come from the caches.
    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingOptions = .greedy,
                         stopToken: Int? = nil, timings: GenerationTimings? = nil) throws -> [Int] {
        try sampling.validate()
        guard !prompt.isEmpty else { throw GenerationError("the prompt is empty") }
        guard maxTokens >= 0 else { throw GenerationError("max tokens must be >= 0") }
        guard prompt.count + maxTokens <= maxContext else {
            throw GenerationError("prompt (\(prompt.count) tokens) plus \(maxTokens) new tokens exceeds the model's context of \(maxContext)")
        }
        guard maxTokens > 0 else { return [] }
        var sampler = Sampler(sampling)
        // Caches sized for this request, not the model's whole context (which for converted
        // models can be 100k positions).
        let state = startDecoding(capacity: prompt.count + maxTokens)
        let start = DispatchTime.now().uptimeNanoseconds
        var logits = feed(prompt, state: state)
        let prefilled = DispatchTime.now().uptimeNanoseconds
        var generated: [Int] = []
        var decodeSteps = 0
        while generated.count < maxTokens {
            let next = sampler.sample(logits)
            if next == stopToken { break }
            generated.append(next)
            if generated.count == maxTokens { break }
            logits = feed([next], state: state)
            decodeSteps += 1
        }
        if let timings {
            timings.promptTokens = prompt.count
            timings.prefillSeconds = Double(prefilled - start) / 1e9
            timings.decodeSteps = decodeSteps
            timings.decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - prefilled) / 1e9
        }
        return generated
    }
}

/// Where `generate` reports how long the prompt and the new tokens took.
public final class GenerationTimings {
    public var promptTokens = 0
    /// Feeding the whole prompt (one forward pass over it).
    public var prefillSeconds = 0.0
    /// Single-token steps after the prompt, and their time (sampling included).
    public var decodeSteps = 0
    public var decodeSeconds = 0.0
    public init() {}
}

/// Type-erased `IncrementalDecoder`, so a command can hold "some model" (a plain LM or a
/// composition) without knowing which.
public struct AnyIncrementalDecoder: IncrementalDecoder {
    /// One sequence being decoded: the wrapped decoder's state, captured by `feed`.
    public final class State {
        let feed: ([Int]) -> [Float]
        init(feed: @escaping ([Int]) -> [Float]) { self.feed = feed }
    }

    public let vocabularySize: Int
    public let maxContext: Int
    private let start: (Int) -> State

    public init<D: IncrementalDecoder>(_ decoder: D) {
        vocabularySize = decoder.vocabularySize
        maxContext = decoder.maxContext
        start = { capacity in
            let state = decoder.startDecoding(capacity: capacity)
            return State { decoder.feed($0, state: state) }
        }
    }

    public func startDecoding(capacity: Int) -> State { start(capacity) }
    public func feed(_ tokens: [Int], state: State) -> [Float] { state.feed(tokens) }
}
