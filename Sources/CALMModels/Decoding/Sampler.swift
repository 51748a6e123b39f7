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
