import CALMModels
import Foundation

/// GPT-2: LayerNorm blocks with learned positions, a plain GELU MLP, biases everywhere and a
/// tied head. Its Conv1D layers store weights `(in, out)`, and `c_attn` fuses q, k and v.
public struct GPT2Family: HuggingFaceArchitecture {
    public init() {}
    public var modelType: String { "gpt2" }
    public var causalLMClass: String { "GPT2LMHeadModel" }

    public func config(from hf: HuggingFaceConfig) throws -> TransformerConfig {
        let hidden = try hf.int("n_embd")
        let heads = try hf.int("n_head")
        try hf.requireNeutral("scale_attn_by_inverse_layer_idx", { $0.bool == false },
                              "per-layer attention scaling is not implemented")
        try hf.requireNeutral("add_cross_attention", { $0.bool == false }, "encoder-decoder GPT-2 is not a causal LM")
        var config = TransformerConfig.gpt2(vocabSize: try hf.int("vocab_size"), hiddenSize: hidden, numLayers: try hf.int("n_layer"),
                                            numHeads: heads, maxPositions: try hf.int("n_positions", default: 1024),
                                            normEps: Float(try hf.double("layer_norm_epsilon", default: 1e-5)))
        config.intermediateSize = try hf.int("n_inner", default: 4 * hidden)
        config.activation = try hf.activation("activation_function", default: "gelu_new")
        config.tiedEmbeddings = try hf.bool("tie_word_embeddings", default: true)
        if try !hf.bool("scale_attn_weights", default: true) { config.attentionScale = 1 }
        do { try config.validate() } catch { throw ConversionError("\(hf.path): \(error)") }
        return config
    }

    public func source(for parameter: String, config: TransformerConfig, names: Set<String>) -> TensorSource? {
        sources(for: config, names: names)[parameter]
    }

    func sources(for config: TransformerConfig, names: Set<String>) -> [String: TensorSource] {
        let p = names.contains("transformer.wte.weight") ? "transformer." : ""
        var out: [String: TensorSource] = [
            "embed.weight": .init(p + "wte.weight"), "pos_embed.weight": .init(p + "wpe.weight"),
            "final_norm.weight": .init(p + "ln_f.weight"), "final_norm.bias": .init(p + "ln_f.bias"),
        ]
        if !config.tiedEmbeddings { out["lm_head.weight"] = .init("lm_head.weight") }
        for i in 0..<config.numLayers {
            let (c, h) = ("layers.\(i).", "\(p)h.\(i).")
            for (calm, hf) in [("attn_norm", "ln_1"), ("mlp_norm", "ln_2")] {
                out[c + calm + ".weight"] = .init(h + hf + ".weight")
                out[c + calm + ".bias"] = .init(h + hf + ".bias")
            }
            for (part, proj) in ["q_proj", "k_proj", "v_proj"].enumerated() {
                out[c + "attn.\(proj).weight"] = .init(h + "attn.c_attn.weight", .fusedPart(part: part, parts: 3, transpose: true))
                out[c + "attn.\(proj).bias"] = .init(h + "attn.c_attn.bias", .fusedPart(part: part, parts: 3, transpose: false))
            }
            for (calm, hf) in [("attn.o_proj", "attn.c_proj"), ("mlp.up_proj", "mlp.c_fc"), ("mlp.down_proj", "mlp.c_proj")] {
                out[c + calm + ".weight"] = .init(h + hf + ".weight", .transpose)
                out[c + calm + ".bias"] = .init(h + hf + ".bias")
            }
        }
        return out
    }

    public func isIgnorableBuffer(_ name: String) -> Bool { name.hasSuffix(".attn.bias") || name.hasSuffix(".attn.masked_bias") }

    public func exportTensors(_ model: TransformerLM) -> [(name: String, shape: [Int], data: [Float])] {
        let c = model.config
        var out: [(name: String, shape: [Int], data: [Float])] = [
            ("transformer.wte.weight", model.tokenEmbedding.shape, model.tokenEmbedding.data),
        ]
        if let pos = model.positionEmbedding { out.append(("transformer.wpe.weight", pos.shape, pos.data)) }
        for (i, b) in model.blocks.enumerated() {
            let h = "transformer.h.\(i)."
            out.append((h + "ln_1.weight", [c.hiddenSize], b.attentionNorm.weight.data))
            out.append((h + "ln_1.bias", [c.hiddenSize], b.attentionNorm.bias?.data ?? []))
            // c_attn (in, 3·out): q, k, v weights side by side, transposed.
            // Quantized weights are written widened to float32 (exactly their dequantized values).
            let fused = b.query.weight.floatTensor().data + b.key.weight.floatTensor().data + b.value.weight.floatTensor().data  // (3C, C)
            out.append((h + "attn.c_attn.weight", [c.hiddenSize, 3 * c.hiddenSize], TensorSource.transposed(fused, rows: 3 * c.hiddenSize, cols: c.hiddenSize)))
            out.append((h + "attn.c_attn.bias", [3 * c.hiddenSize],
                        (b.query.bias?.data ?? []) + (b.key.bias?.data ?? []) + (b.value.bias?.data ?? [])))
            for (hf, layer) in [("attn.c_proj", b.output), ("mlp.c_fc", b.up), ("mlp.c_proj", b.down)] {
                let (rows, cols) = (layer.weight.shape[0], layer.weight.shape[1])
                out.append((h + hf + ".weight", [cols, rows], TensorSource.transposed(layer.weight.floatTensor().data, rows: rows, cols: cols)))
                out.append((h + hf + ".bias", [rows], layer.bias?.data ?? []))
            }
            out.append((h + "ln_2.weight", [c.hiddenSize], b.mlpNorm.weight.data))
            out.append((h + "ln_2.bias", [c.hiddenSize], b.mlpNorm.bias?.data ?? []))
        }
        out.append(("transformer.ln_f.weight", [c.hiddenSize], model.finalNorm.weight.data))
        out.append(("transformer.ln_f.bias", [c.hiddenSize], model.finalNorm.bias?.data ?? []))
        if let head = model.lmHead { out.append(("lm_head.weight", head.shape, head.data)) }
        return out
    }

    public func exportConfig(_ c: TransformerConfig) throws -> [String: Any] {
        guard c.norm == .layer, c.positions == .learned, !c.gatedMLP, c.qkvBias, c.attentionOutputBias, c.mlpBias,
              c.numKVHeads == c.numHeads, c.headDim * c.numHeads == c.hiddenSize, c.attentionScale == nil || c.attentionScale == 1 else {
            throw ConversionError("configuration of architecture \(c.architecture) cannot be written as GPT2LMHeadModel")
        }
        let activation = HuggingFaceConfig.name(of: c.activation, tanhName: "gelu_new")
        return ["vocab_size": c.vocabSize, "n_embd": c.hiddenSize, "n_layer": c.numLayers, "n_head": c.numHeads,
                "n_positions": c.maxPositions, "n_inner": c.intermediateSize, "activation_function": activation,
                "layer_norm_epsilon": Double(c.normEps), "tie_word_embeddings": c.tiedEmbeddings,
                "scale_attn_weights": c.attentionScale == nil, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
                "torch_dtype": "float32"]
    }
}
