import CALMTensor

/// One pre-norm decoder block: `x + attn(norm(x))`, then `x + mlp(norm(x))`.
public struct TransformerBlock {
    public let attentionNorm: Norm
    public let query: Linear, key: Linear, value: Linear, output: Linear
    public let mlpNorm: Norm
    /// Present for gated MLPs (SwiGLU, GeGLU).
    public let gate: Linear?
    public let up: Linear, down: Linear
    let config: TransformerConfig

    /// Block `prefix` (e.g. "layers.3") with its weights from `weights`, in checkpoint order.
    public init(_ prefix: String, config c: TransformerConfig, weights w: inout some WeightSource) throws {
        config = c
        let std: Float = 0.02
        // Residual-branch outputs start smaller so deep stacks begin near the identity (GPT-2).
        let residualStd = std / Float(2 * c.numLayers).squareRoot()
        let (width, qWidth, kvWidth) = (c.hiddenSize, c.numHeads * c.headDim, c.numKVHeads * c.headDim)
        attentionNorm = try Norm("\(prefix).attn_norm", config: c, weights: &w)
        query = try Linear("\(prefix).attn.q_proj", inFeatures: width, outFeatures: qWidth, bias: c.qkvBias, std: std, weights: &w)
        key = try Linear("\(prefix).attn.k_proj", inFeatures: width, outFeatures: kvWidth, bias: c.qkvBias, std: std, weights: &w)
        value = try Linear("\(prefix).attn.v_proj", inFeatures: width, outFeatures: kvWidth, bias: c.qkvBias, std: std, weights: &w)
        output = try Linear("\(prefix).attn.o_proj", inFeatures: qWidth, outFeatures: width, bias: c.attentionOutputBias,
                            std: residualStd, weights: &w)
        mlpNorm = try Norm("\(prefix).mlp_norm", config: c, weights: &w)
        gate = c.gatedMLP
            ? try Linear("\(prefix).mlp.gate_proj", inFeatures: width, outFeatures: c.intermediateSize, bias: c.mlpBias, std: std,
                         weights: &w)
            : nil
        up = try Linear("\(prefix).mlp.up_proj", inFeatures: width, outFeatures: c.intermediateSize, bias: c.mlpBias, std: std,
                        weights: &w)
        down = try Linear("\(prefix).mlp.down_proj", inFeatures: c.intermediateSize, outFeatures: width, bias: c.mlpBias,
                          std: residualStd, weights: &w)
    }

    /// The float32 tensors, in checkpoint order.
    public func parameters(_ prefix: String) -> NamedParameters {
        weights(prefix).compactMap { name, w in w.dense.map { (name, $0) } }
    }

    /// Every stored weight, quantized or not, in checkpoint order.
    public func weights(_ prefix: String) -> NamedWeights {
        attentionNorm.weights("\(prefix).attn_norm")
            + query.weights("\(prefix).attn.q_proj") + key.weights("\(prefix).attn.k_proj")
            + value.weights("\(prefix).attn.v_proj") + output.weights("\(prefix).attn.o_proj")
            + mlpNorm.weights("\(prefix).mlp_norm")
            + (gate?.weights("\(prefix).mlp.gate_proj") ?? [])
            + up.weights("\(prefix).mlp.up_proj") + down.weights("\(prefix).mlp.down_proj")
    }

    /// `x (B, T, C)` at positions `start ..< start + T`. With a cache, this layer's keys and
    /// values are appended to it and attention covers every cached position (inference only).
    func callAsFunction(_ x: Tensor, layer: Int, start: Int, rotary: RotaryEmbedding?, cache: KVCache?) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        let c = config
        let h = attentionNorm(x)  // (B, T, C)
        var q = query(h).reshaped([b, t, c.numHeads, c.headDim])  // (B, T, H, D)
        var k = key(h).reshaped([b, t, c.numKVHeads, c.headDim])  // (B, T, Hkv, D)
        let v = value(h).reshaped([b, t, c.numKVHeads, c.headDim])  // (B, T, Hkv, D)
        if let rotary {
            q = q.rope(rotary, startPosition: start)
            k = k.rope(rotary, startPosition: start)
        }
        let attended: Tensor  // (B, T, H, D)
        if let cache {
            cache.store(layer: layer, keys: k, values: v)
            attended = cache.attention(query: q, layer: layer, scale: c.attentionScale, window: c.slidingWindow)
        } else {
            attended = Tensor.attention(query: q, key: k, value: v, causal: true, queryOffset: 0, window: c.slidingWindow,
                                        scale: c.attentionScale)
        }
        let afterAttention = output(attended.reshaped([b, t, c.numHeads * c.headDim]), residual: x)  // (B, T, C)
        let m = mlpNorm(afterAttention)
        let hidden: Tensor  // (B, T, F)
        if let gate {
            hidden = gate(m).gated(with: up(m), activation: c.activation)
        } else {
            hidden = up(m).activated(c.activation)
        }
        return down(hidden, residual: afterAttention)
    }
}
