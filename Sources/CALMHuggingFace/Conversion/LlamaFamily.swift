import CALMModels
import Foundation

/// Llama, Mistral, Qwen2 and Gemma: pre-norm RMSNorm blocks with rotary attention and a gated
/// MLP, stored under the same tensor names (`model.layers.N.self_attn.q_proj.weight`, ...).
/// They differ in biases, tying, sliding windows and Gemma's scaled embeddings and `1 + w` norms.
public struct LlamaFamily: HuggingFaceArchitecture {
    public enum Variant: String, Sendable { case llama, mistral, qwen2, gemma }
    public let variant: Variant

    public init(_ variant: Variant) { self.variant = variant }

    public var modelType: String { variant.rawValue }

    public var causalLMClass: String {
        switch variant {
        case .llama: return "LlamaForCausalLM"
        case .mistral: return "MistralForCausalLM"
        case .qwen2: return "Qwen2ForCausalLM"
        case .gemma: return "GemmaForCausalLM"
        }
    }

    public func config(from hf: HuggingFaceConfig) throws -> TransformerConfig {
        let hidden = try hf.int("hidden_size")
        let heads = try hf.int("num_attention_heads")
        guard heads > 0 else { throw hf.fail("num_attention_heads", "must be positive") }
        let (theta, scaling) = try hf.rope()
        try hf.requireNeutral("partial_rotary_factor", { $0.number == 1 }, "only full rotary embeddings are implemented")
        try hf.requireNeutral("attn_logit_softcapping", { _ in false }, "logit soft-capping is not implemented")
        try hf.requireNeutral("final_logit_softcapping", { _ in false }, "logit soft-capping is not implemented")
        var slidingWindow: Int?
        switch variant {
        case .mistral:
            slidingWindow = try hf.value("sliding_window") == nil ? nil : hf.int("sliding_window")
        case .qwen2:
            try hf.requireNeutral("use_sliding_window", { $0.bool == false },
                                  "Qwen2's per-layer sliding windows are not implemented")
        case .llama, .gemma:
            break
        }
        let attentionBias = try hf.bool("attention_bias", default: false)
        var activationName = try hf.string("hidden_act") ?? (variant == .gemma ? "gelu_pytorch_tanh" : "silu")
        if variant == .gemma {
            // Gemma's hidden_activation overrides hidden_act; its legacy "gelu" means the tanh form.
            activationName = try hf.string("hidden_activation") ?? activationName
            if activationName == "gelu" { activationName = "gelu_pytorch_tanh" }
        }
        let activation = try hf.activation(named: activationName, field: "hidden_act")
        let config = TransformerConfig(
            architecture: modelType,
            vocabSize: try hf.int("vocab_size"),
            hiddenSize: hidden,
            numLayers: try hf.int("num_hidden_layers"),
            numHeads: heads,
            numKVHeads: try hf.int("num_key_value_heads", default: heads),
            headDim: try hf.int("head_dim", default: hidden / heads),
            intermediateSize: try hf.int("intermediate_size"),
            maxPositions: try hf.int("max_position_embeddings", default: 2048),
            norm: .rms,
            normEps: Float(try hf.double("rms_norm_eps", default: 1e-6)),
            normWeightOffset: variant == .gemma ? 1 : 0,
            positions: .rope,
            ropeTheta: theta,
            activation: activation,
            gatedMLP: true,
            qkvBias: variant == .qwen2 || attentionBias,
            attentionOutputBias: variant != .qwen2 && attentionBias,
            mlpBias: variant == .llama ? try hf.bool("mlp_bias", default: false) : false,
            tiedEmbeddings: try hf.bool("tie_word_embeddings", default: variant == .gemma),
            embeddingScale: variant == .gemma ? Float(hidden).squareRoot() : 1,
            attentionScale: nil,
            ropeScaling: scaling,
            slidingWindow: slidingWindow)
        do { try config.validate() } catch { throw ConversionError("\(hf.path): \(error)") }
        return config
    }

    /// CALM name -> Hugging Face name, without the "model." prefix.
    private func hfName(_ calm: String) -> String {
        var parts = calm.split(separator: ".").map(String.init)
        switch parts.first {
        case "embed": return "embed_tokens.weight"
        case "final_norm": return "norm.weight"
        case "lm_head": return "lm_head.weight"
        default:
            // layers.N.<module>.<...>
            let renames = ["attn_norm": "input_layernorm", "mlp_norm": "post_attention_layernorm", "attn": "self_attn"]
            parts[2] = renames[parts[2]] ?? parts[2]
            return parts.joined(separator: ".")
        }
    }

    public func source(for parameter: String, config: TransformerConfig, names: Set<String>) -> TensorSource? {
        // Checkpoints of the bare model (no LM head wrapper) lack the "model." prefix.
        let prefix = names.contains("model.embed_tokens.weight") ? "model." : ""
        let hf = hfName(parameter)
        return TensorSource(hf == "lm_head.weight" ? hf : prefix + hf)
    }

    public func isIgnorableBuffer(_ name: String) -> Bool { name.hasSuffix("rotary_emb.inv_freq") }

    public func exportTensors(_ model: TransformerLM) -> [(name: String, shape: [Int], data: [Float])] {
        // Quantized weights are written widened to float32 (exactly their dequantized values).
        model.weights.map { name, w in
            let hf = hfName(name)
            return (hf == "lm_head.weight" ? hf : "model." + hf, w.shape, w.floatTensor().data)
        }
    }

    public func exportConfig(_ c: TransformerConfig) throws -> [String: Any] {
        guard c.norm == .rms, c.positions == .rope, c.gatedMLP, c.attentionScale == nil,
              c.normWeightOffset == (variant == .gemma ? 1 : 0),
              c.embeddingScale == (variant == .gemma ? Float(c.hiddenSize).squareRoot() : 1) else {
            throw ConversionError("configuration of architecture \(c.architecture) cannot be written as \(causalLMClass)")
        }
        let biasesFit: Bool
        switch variant {
        case .qwen2: biasesFit = c.qkvBias && !c.attentionOutputBias && !c.mlpBias
        case .mistral, .gemma: biasesFit = !c.qkvBias && !c.attentionOutputBias && !c.mlpBias
        case .llama: biasesFit = c.qkvBias == c.attentionOutputBias
        }
        guard biasesFit else {
            throw ConversionError("the biases of this \(c.architecture) model (q/k/v \(c.qkvBias), output \(c.attentionOutputBias), MLP \(c.mlpBias)) cannot be written as \(causalLMClass)")
        }
        guard c.slidingWindow == nil || variant == .mistral else {
            throw ConversionError("only mistral models have a sliding window")
        }
        var rope: [String: Any] = ["rope_theta": c.ropeTheta, "rope_type": "default"]
        if let s = c.ropeScaling {
            rope["rope_type"] = s.type.rawValue
            rope["factor"] = s.factor
            if s.type == .llama3 {
                rope["low_freq_factor"] = s.lowFreqFactor
                rope["high_freq_factor"] = s.highFreqFactor
                rope["original_max_position_embeddings"] = s.originalMaxPositions
            }
        }
        let activation = HuggingFaceConfig.name(of: c.activation, tanhName: "gelu_pytorch_tanh")
        var out: [String: Any] = [
            "vocab_size": c.vocabSize, "hidden_size": c.hiddenSize, "num_hidden_layers": c.numLayers,
            "num_attention_heads": c.numHeads, "num_key_value_heads": c.numKVHeads, "head_dim": c.headDim,
            "intermediate_size": c.intermediateSize, "max_position_embeddings": c.maxPositions,
            "rms_norm_eps": Double(c.normEps), "hidden_act": activation, "tie_word_embeddings": c.tiedEmbeddings,
            "rope_theta": c.ropeTheta, "rope_parameters": rope, "torch_dtype": "float32",
        ]
        if c.ropeScaling != nil {  // also in the transformers 4 spelling
            out["rope_scaling"] = rope.filter { $0.key != "rope_theta" }
        }
        switch variant {
        case .llama:
            out["attention_bias"] = c.qkvBias
            out["mlp_bias"] = c.mlpBias
        case .mistral:
            out["sliding_window"] = c.slidingWindow.map { $0 as Any } ?? NSNull()
        case .qwen2:
            out["use_sliding_window"] = false
        case .gemma:
            break
        }
        return out
    }
}
