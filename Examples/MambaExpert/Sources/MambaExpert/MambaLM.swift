import CALMModels
import CALMTensor

/// A Mamba language model (Hugging Face `MambaForCausalLM`), forward only: token embedding,
/// blocks of `h + mixer(RMSNorm(h))`, a final RMSNorm and the output head (the embedding when
/// tied). It runs frozen: as a CALM augment, or on its own for `generate`, `eval`, `forward`.
public final class MambaLM {
    public let config: MambaConfig
    let embedding: Tensor  // (V, C)
    let norms: [Tensor]  // (C) per block
    let mixers: [MambaMixer]
    let finalNorm: Tensor  // (C)
    let head: Linear?  // (V, C), when not tied

    /// Builds every weight from `weights` (a checkpoint, a Hugging Face directory or a seed), in
    /// checkpoint order.
    public init(config: MambaConfig, weights: inout some WeightSource) throws {
        try config.validate()
        let c = config.hiddenSize
        self.config = config
        embedding = try weights.weight("embed.weight", shape: [config.vocabSize, c], initial: .normal(std: 0.02))
        var norms: [Tensor] = [], mixers: [MambaMixer] = []
        for layer in 0..<config.numLayers {
            norms.append(try weights.weight("layers.\(layer).norm.weight", shape: [c], initial: .filled(1)))
            mixers.append(try MambaMixer("layers.\(layer).mixer", config: config, weights: &weights))
        }
        self.norms = norms
        self.mixers = mixers
        finalNorm = try weights.weight("final_norm.weight", shape: [c], initial: .filled(1))
        head = config.tiedEmbeddings ? nil
            : try Linear("lm_head", inFeatures: c, outFeatures: config.vocabSize, bias: false, std: 0.02, weights: &weights)
    }

    /// Every stored weight with its checkpoint name, in construction order.
    public var namedWeights: NamedWeights {
        var out: NamedWeights = [("embed.weight", .dense(embedding))]
        for layer in 0..<config.numLayers {
            out.append(("layers.\(layer).norm.weight", .dense(norms[layer])))
            out += mixers[layer].weights("layers.\(layer).mixer")
        }
        out.append(("final_norm.weight", .dense(finalNorm)))
        return out + (head?.weights("lm_head") ?? [])
    }

    /// Runs `tokens` after everything `state` has seen, through block `last` (−1: the embedding
    /// only), and returns the outputs of the blocks in `collect`, `(B, T, C)` each. Only the
    /// blocks up to `last` advance their state.
    public func forward(_ tokens: TokenBatch, state: MambaState, collect: Set<Int>, upTo last: Int) -> [Int: Tensor] {
        run(tokens, state: state, collect: collect, upTo: last).hidden
    }

    /// The same, also returning the output of block `last`.
    func run(_ tokens: TokenBatch, state: MambaState, collect: Set<Int>, upTo last: Int) -> (output: Tensor, hidden: [Int: Tensor]) {
        precondition(state.layers.allSatisfy { $0.batch == tokens.batch }, "MambaLM: a state for another batch size")
        return withoutGradients {
            var h = Tensor.embedding(embedding, ids: tokens.ids, shape: [tokens.batch, tokens.length])  // (B, T, C)
            var hidden: [Int: Tensor] = collect.contains(-1) ? [-1: h] : [:]
            for layer in 0..<min(last + 1, config.numLayers) {
                let normed = h.rmsNorm(weight: norms[layer], eps: config.layerNormEpsilon)  // (B, T, C)
                h = h.adding(mixers[layer](normed, state: state.layers[layer]))
                if collect.contains(layer) { hidden[layer] = h }
            }
            return (h, hidden)
        }
    }

    /// Logits `(B, T, V)` from the last block's output `(B, T, C)`.
    public func logits(fromHidden h: Tensor) -> Tensor {
        withoutGradients {
            let normed = h.rmsNorm(weight: finalNorm, eps: config.layerNormEpsilon)
            return (head ?? Linear(weight: embedding))(normed)
        }
    }

    /// Logits `(B, T, V)` of a whole batch from a fresh state.
    public func logits(_ tokens: TokenBatch) -> Tensor {
        let state = MambaState(batch: tokens.batch, config: config)
        return logits(fromHidden: run(tokens, state: state, collect: [], upTo: config.numLayers - 1).output)
    }
}
