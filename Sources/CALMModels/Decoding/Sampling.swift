import CALMTensor
import Foundation

/// How to pick the next token from logits.
public struct SamplingOptions: Sendable, Equatable {
    /// 0 means greedy (arg-max).
    public var temperature: Float
    /// Keep only the k most likely tokens (nil: all).
    public var topK: Int?
    /// Keep the smallest set of tokens whose probability reaches p (nil: all).
    public var topP: Float?
    public var seed: UInt64

    public static let greedy = SamplingOptions(temperature: 0)

    public init(temperature: Float = 0, topK: Int? = nil, topP: Float? = nil, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    public func validate() throws {
        if temperature < 0 || !temperature.isFinite { throw GenerationError("temperature must be >= 0, got \(temperature)") }
        if let topK, topK < 1 { throw GenerationError("top-k must be >= 1, got \(topK)") }
        if let topP, !(topP > 0 && topP <= 1) { throw GenerationError("top-p must be in (0, 1], got \(topP)") }
    }
}

/// Draws tokens from logits according to `SamplingOptions`, reproducibly from its seed.
public struct Sampler {
    public let options: SamplingOptions
    private var generator: SeededGenerator

    public init(_ options: SamplingOptions) {
        self.options = options
        generator = SeededGenerator(seed: options.seed)
    }

    public mutating func sample(_ logits: [Float]) -> Int {
        if options.temperature == 0 { return Self.argmax(logits) }
        // Candidates sorted by logit, cut by top-k, then softmax at the temperature.
        var order = Array(logits.indices).sorted { logits[$0] > logits[$1] }
        if let k = options.topK { order = Array(order.prefix(k)) }
        let maxLogit = logits[order[0]]
        var probs = order.map { Foundation.exp(Double((logits[$0] - maxLogit) / options.temperature)) }
        let total = probs.reduce(0, +)
        probs = probs.map { $0 / total }
        if let p = options.topP {
            var cumulative = 0.0, keep = 0
            while keep < probs.count {
                cumulative += probs[keep]
                keep += 1
                if cumulative >= Double(p) { break }
            }
            order = Array(order.prefix(keep))
            probs = Array(probs.prefix(keep))
            let kept = probs.reduce(0, +)
            probs = probs.map { $0 / kept }
        }
        let u = Double(generator.nextUniform())
        var cumulative = 0.0
        for (i, p) in probs.enumerated() {
            cumulative += p
            if u < cumulative { return order[i] }
        }
        return order[order.count - 1]
    }

    /// Index of the largest logit (the first on ties).
    public static func argmax(_ logits: [Float]) -> Int {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return best
    }
}

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
        withoutGradients {
            let logits = forward(TokenBatch(tokens), cache: cache).logits!  // (1, T, V)
            return Array(logits.data[((tokens.count - 1) * config.vocabSize)...])
        }
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
