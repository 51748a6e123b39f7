import CALMTensor
import Foundation

/// The hyper-parameters of a decoder-only transformer LM.
///
/// One configuration covers Llama-style blocks (RMSNorm, RoPE, SwiGLU, grouped-query attention,
/// optional q/k/v bias as in Qwen2, optional tied embeddings) and GPT-2-style blocks (LayerNorm
/// with bias, learned positions, GELU, biases everywhere). Encoded as snake_case JSON; unknown
/// keys are rejected rather than ignored.
public struct TransformerConfig: Codable, Sendable, Equatable {
    public enum NormKind: String, Codable, Sendable { case rms, layer }
    public enum PositionKind: String, Codable, Sendable { case rope, learned }

    /// The model-type string stored in checkpoints (e.g. "llama", "gpt2"): one of `families`.
    public var architecture: String

    /// Every model family this configuration describes: the one list that conversion, the
    /// architecture registry and the checkpoint loader all use.
    public static let families = ["gemma", "gpt2", "llama", "mistral", "qwen2"]
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var norm: NormKind
    public var normEps: Float
    /// Added to norm weights before use: 1 for Gemma (which stores w − 1), else 0.
    public var normWeightOffset: Float
    public var positions: PositionKind
    public var ropeTheta: Double
    public var activation: Activation.Kind
    /// SwiGLU/GeGLU (`down(act(gate(x)) * up(x))`) versus a plain MLP (`down(act(up(x)))`).
    public var gatedMLP: Bool
    /// Bias on the q, k and v projections (Qwen2, GPT-2).
    public var qkvBias: Bool
    /// Bias on the attention output projection (GPT-2).
    public var attentionOutputBias: Bool
    /// Biases on the MLP projections (GPT-2).
    public var mlpBias: Bool
    public var tiedEmbeddings: Bool
    /// Multiplies token embeddings (Gemma: sqrt(hidden)); 1 elsewhere.
    public var embeddingScale: Float
    /// Attention logit scale; nil means 1/sqrt(head_dim).
    public var attentionScale: Float?
    /// Rescaled rotary frequencies for longer contexts (Llama 3.x, linear scaling); nil: none.
    public var ropeScaling: RopeScaling?
    /// Sliding-window attention span (Mistral); nil: full causal attention.
    public var slidingWindow: Int?
    /// The token ids this model stores rows for (ascending), when it knows only part of its
    /// tokenizer's vocabulary: a small expert trained on one corpus then pays for a softmax and
    /// embedding over the tokens it uses, not all `vocabSize`. One extra last row reads every
    /// other token; other tokens are never predicted (logit -inf). nil: every token has a row.
    public var storedTokens: [Int]?

    /// Rows of the token embedding (and output head): `vocabSize`, or the stored tokens + 1.
    public var embeddingRows: Int { storedTokens.map { $0.count + 1 } ?? vocabSize }

    /// How rotary frequencies are rescaled, with the Hugging Face definitions.
    public struct RopeScaling: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable, CaseIterable { case linear, llama3 }
        public var type: Kind
        public var factor: Double
        /// llama3 only.
        public var lowFreqFactor: Double?
        public var highFreqFactor: Double?
        public var originalMaxPositions: Int?

        public init(type: Kind, factor: Double, lowFreqFactor: Double? = nil, highFreqFactor: Double? = nil,
                    originalMaxPositions: Int? = nil) {
            self.type = type; self.factor = factor; self.lowFreqFactor = lowFreqFactor
            self.highFreqFactor = highFreqFactor; self.originalMaxPositions = originalMaxPositions
        }

        enum CodingKeys: String, CodingKey {
            case type, factor, lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
            case originalMaxPositions = "original_max_positions"
        }
    }

    public init(
        architecture: String, vocabSize: Int, hiddenSize: Int, numLayers: Int, numHeads: Int, numKVHeads: Int,
        headDim: Int, intermediateSize: Int, maxPositions: Int, norm: NormKind, normEps: Float, normWeightOffset: Float,
        positions: PositionKind, ropeTheta: Double, activation: Activation.Kind, gatedMLP: Bool, qkvBias: Bool,
        attentionOutputBias: Bool, mlpBias: Bool, tiedEmbeddings: Bool, embeddingScale: Float, attentionScale: Float?,
        ropeScaling: RopeScaling? = nil, slidingWindow: Int? = nil, storedTokens: [Int]? = nil
    ) {
        self.architecture = architecture; self.vocabSize = vocabSize; self.hiddenSize = hiddenSize
        self.numLayers = numLayers; self.numHeads = numHeads; self.numKVHeads = numKVHeads; self.headDim = headDim
        self.intermediateSize = intermediateSize; self.maxPositions = maxPositions; self.norm = norm
        self.normEps = normEps; self.normWeightOffset = normWeightOffset; self.positions = positions
        self.ropeTheta = ropeTheta; self.activation = activation; self.gatedMLP = gatedMLP; self.qkvBias = qkvBias
        self.attentionOutputBias = attentionOutputBias; self.mlpBias = mlpBias; self.tiedEmbeddings = tiedEmbeddings
        self.embeddingScale = embeddingScale; self.attentionScale = attentionScale; self.ropeScaling = ropeScaling
        self.slidingWindow = slidingWindow; self.storedTokens = storedTokens
    }

    /// A Llama-style configuration.
    public static func llama(
        vocabSize: Int, hiddenSize: Int, numLayers: Int, numHeads: Int, numKVHeads: Int? = nil,
        intermediateSize: Int, maxPositions: Int = 2048, ropeTheta: Double = 10_000,
        normEps: Float = 1e-5, tiedEmbeddings: Bool = false, qkvBias: Bool = false
    ) -> TransformerConfig {
        TransformerConfig(
            architecture: qkvBias ? "qwen2" : "llama", vocabSize: vocabSize, hiddenSize: hiddenSize,
            numLayers: numLayers, numHeads: numHeads, numKVHeads: numKVHeads ?? numHeads,
            headDim: hiddenSize / numHeads, intermediateSize: intermediateSize, maxPositions: maxPositions,
            norm: .rms, normEps: normEps, normWeightOffset: 0, positions: .rope, ropeTheta: ropeTheta,
            activation: .silu, gatedMLP: true, qkvBias: qkvBias, attentionOutputBias: false, mlpBias: false,
            tiedEmbeddings: tiedEmbeddings, embeddingScale: 1, attentionScale: nil, ropeScaling: nil, slidingWindow: nil)
    }

    /// A GPT-2-style configuration.
    public static func gpt2(
        vocabSize: Int, hiddenSize: Int, numLayers: Int, numHeads: Int, maxPositions: Int = 1024,
        normEps: Float = 1e-5
    ) -> TransformerConfig {
        TransformerConfig(
            architecture: "gpt2", vocabSize: vocabSize, hiddenSize: hiddenSize, numLayers: numLayers,
            numHeads: numHeads, numKVHeads: numHeads, headDim: hiddenSize / numHeads,
            intermediateSize: 4 * hiddenSize, maxPositions: maxPositions, norm: .layer, normEps: normEps,
            normWeightOffset: 0, positions: .learned, ropeTheta: 10_000, activation: .geluTanh,
            gatedMLP: false, qkvBias: true, attentionOutputBias: true, mlpBias: true,
            tiedEmbeddings: true, embeddingScale: 1, attentionScale: nil, ropeScaling: nil, slidingWindow: nil)
    }

    /// Checks the values are consistent; the error names the offending field.
    public func validate() throws {
        func require(_ ok: Bool, _ field: String, _ why: String) throws {
            if !ok { throw ConfigError(field: field, message: why) }
        }
        try require(Self.families.contains(architecture), "architecture",
                    "\"\(architecture)\" is not a transformer family (known: \(Self.families.joined(separator: ", ")))")
        for (name, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("num_layers", numLayers),
                              ("num_heads", numHeads), ("num_kv_heads", numKVHeads), ("head_dim", headDim),
                              ("intermediate_size", intermediateSize), ("max_positions", maxPositions)] {
            try require(value > 0, name, "must be positive, got \(value)")
        }
        try require(numHeads % numKVHeads == 0, "num_kv_heads",
                    "\(numKVHeads) does not divide num_heads \(numHeads)")
        try require(positions != .rope || headDim % 2 == 0, "head_dim", "RoPE needs an even head_dim, got \(headDim)")
        try require(normEps > 0, "norm_eps", "must be positive")
        try require(ropeTheta > 0, "rope_theta", "must be positive")
        try require((slidingWindow ?? 1) > 0, "sliding_window", "must be positive")
        if let stored = storedTokens {
            try require(!stored.isEmpty, "stored_tokens", "is empty (leave it out to store every token)")
            try require(zip(stored, stored.dropFirst()).allSatisfy { $0 < $1 }, "stored_tokens", "must be ascending without repeats")
            try require(stored.first! >= 0 && stored.last! < vocabSize, "stored_tokens", "has ids outside 0..<\(vocabSize)")
        }
        if let r = ropeScaling {
            try require(r.factor > 0, "rope_scaling.factor", "must be positive")
            if r.type == .llama3 {
                try require(r.lowFreqFactor != nil && r.highFreqFactor != nil && (r.originalMaxPositions ?? 0) > 0,
                            "rope_scaling", "llama3 needs low_freq_factor, high_freq_factor and original_max_positions")
                try require(r.highFreqFactor! > r.lowFreqFactor!, "rope_scaling", "needs high_freq_factor > low_freq_factor")
            }
        }
    }

    /// Number of parameters.
    public var parameterCount: Int {
        let attention = hiddenSize * headDim * (numHeads * 2 + numKVHeads * 2)
            + (qkvBias ? headDim * (numHeads + 2 * numKVHeads) : 0) + (attentionOutputBias ? hiddenSize : 0)
        let mlp = (gatedMLP ? 3 : 2) * hiddenSize * intermediateSize
            + (mlpBias ? intermediateSize * (gatedMLP ? 2 : 1) + hiddenSize : 0)
        let normParams = (norm == .layer ? 2 : 1) * hiddenSize
        let perLayer = attention + mlp + 2 * normParams
        return embeddingRows * hiddenSize * (tiedEmbeddings ? 1 : 2) + (positions == .learned ? maxPositions * hiddenSize : 0)
            + numLayers * perLayer + normParams
    }
}

/// An invalid configuration value.
public struct ConfigError: Error, CustomStringConvertible {
    public var field: String
    public var message: String
    public var description: String { "invalid model configuration: \(field) \(message)" }
}

extension TransformerConfig {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case architecture, vocabSize = "vocab_size", hiddenSize = "hidden_size", numLayers = "num_layers"
        case numHeads = "num_heads", numKVHeads = "num_kv_heads", headDim = "head_dim"
        case intermediateSize = "intermediate_size", maxPositions = "max_positions", norm
        case normEps = "norm_eps", normWeightOffset = "norm_weight_offset", positions
        case ropeTheta = "rope_theta", activation, gatedMLP = "gated_mlp", qkvBias = "qkv_bias"
        case attentionOutputBias = "attention_output_bias", mlpBias = "mlp_bias"
        case tiedEmbeddings = "tied_embeddings", embeddingScale = "embedding_scale"
        case attentionScale = "attention_scale", ropeScaling = "rope_scaling", slidingWindow = "sliding_window"
        case storedTokens = "stored_tokens"
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        let unknown = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue).filter { !known.contains($0) }
        if !unknown.isEmpty {
            throw ConfigError(field: unknown.sorted().joined(separator: ", "), message: "is not a known configuration key")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architecture = try c.decode(String.self, forKey: .architecture)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        numLayers = try c.decode(Int.self, forKey: .numLayers)
        numHeads = try c.decode(Int.self, forKey: .numHeads)
        numKVHeads = try c.decodeIfPresent(Int.self, forKey: .numKVHeads) ?? numHeads
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim) ?? hiddenSize / max(numHeads, 1)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        maxPositions = try c.decode(Int.self, forKey: .maxPositions)
        norm = try c.decodeIfPresent(NormKind.self, forKey: .norm) ?? .rms
        normEps = try c.decodeIfPresent(Float.self, forKey: .normEps) ?? 1e-5
        normWeightOffset = try c.decodeIfPresent(Float.self, forKey: .normWeightOffset) ?? 0
        positions = try c.decodeIfPresent(PositionKind.self, forKey: .positions) ?? .rope
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? 10_000
        activation = try c.decodeIfPresent(Activation.Kind.self, forKey: .activation) ?? .silu
        gatedMLP = try c.decodeIfPresent(Bool.self, forKey: .gatedMLP) ?? true
        qkvBias = try c.decodeIfPresent(Bool.self, forKey: .qkvBias) ?? false
        attentionOutputBias = try c.decodeIfPresent(Bool.self, forKey: .attentionOutputBias) ?? false
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? false
        tiedEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tiedEmbeddings) ?? false
        embeddingScale = try c.decodeIfPresent(Float.self, forKey: .embeddingScale) ?? 1
        attentionScale = try c.decodeIfPresent(Float.self, forKey: .attentionScale)
        ropeScaling = try c.decodeIfPresent(RopeScaling.self, forKey: .ropeScaling)
        slidingWindow = try c.decodeIfPresent(Int.self, forKey: .slidingWindow)
        storedTokens = try c.decodeIfPresent([Int].self, forKey: .storedTokens)
    }

    /// Canonical JSON (sorted keys), as stored in checkpoints.
    public func jsonString() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Parses and validates a JSON configuration.
    public static func parse(json: String) throws -> TransformerConfig {
        let config: TransformerConfig
        do {
            config = try JSONDecoder().decode(TransformerConfig.self, from: Data(json.utf8))
        } catch let error as ConfigError {
            throw error
        } catch let DecodingError.keyNotFound(key, _) {
            throw ConfigError(field: key.stringValue, message: "is missing")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.dataCorrupted(context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ConfigError(field: field.isEmpty ? "(json)" : field, message: context.debugDescription)
        } catch let DecodingError.valueNotFound(_, context) {
            throw ConfigError(field: context.codingPath.map(\.stringValue).joined(separator: "."), message: "is null")
        }
        try config.validate()
        return config
    }
}

extension TransformerConfig {
    /// FLOPs (2 per multiply-add) of one block for one token attending over `span` keys.
    public func blockFLOPsPerToken(span: Int) -> Double {
        let projections = hiddenSize * headDim * (2 * numHeads + 2 * numKVHeads)
        let mlp = (gatedMLP ? 3 : 2) * hiddenSize * intermediateSize
        let attention = 2 * span * numHeads * headDim  // scores and weighted values
        return 2 * Double(projections + mlp + attention)
    }

    /// FLOPs of the output projection for one token.
    public var headFLOPsPerToken: Double { 2 * Double(hiddenSize * embeddingRows) }
}
