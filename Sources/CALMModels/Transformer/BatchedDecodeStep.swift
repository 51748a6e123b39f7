import CALMTensor

/// One decoding step for several independent sequences at once (continuous batching): every
/// sequence feeds one new token, each with its own `KVCache` (batch 1) at its own length.
/// The projections and MLPs of all rows run as one `(B, C) x W` product per weight; only
/// rotary positions and attention, which depend on each sequence's own cache, run per row.
extension TransformerLM {
    /// Feeds `tokens[b]` to the sequence cached in `caches[b]`.
    ///
    /// - `collect`: block outputs to return, `(B, 1, C)` each (-1: the embedding output).
    /// - `upTo`: stop after this block (no logits); nil runs the whole model and returns
    ///   logits `(B, V)` for the new tokens.
    /// - `hook`: rewrites a block's output `(B, 1, C)` before the next block sees it.
    /// Inference only (run inside `withoutGradients`).
    public func batchedStep(_ tokens: [Int], caches: [KVCache], collect: Set<Int> = [], upTo lastLayer: Int? = nil,
                            hook: BlockHook? = nil) -> ForwardOutput {
        precondition(tokens.count == caches.count && !tokens.isEmpty, "batchedStep: one token per cache")
        let positions = caches.map(\.length)
        var h = batchedEmbedding(tokens, positions: positions)  // (B, 1, C)
        var hidden: [Int: Tensor] = [:]
        let last = lastLayer ?? (config.numLayers - 1)
        for layer in -1...last {
            if layer >= 0 { h = blocks[layer].batchedStep(h, layer: layer, positions: positions, rotary: rotary, caches: caches) }
            if let hook { h = hook(layer, h) }
            if collect.contains(layer) { hidden[layer] = h }
        }
        for cache in caches { cache.advance(by: 1) }
        let logits = lastLayer == nil ? self.logits(fromHidden: h).reshaped([tokens.count, config.vocabSize]) : nil
        return ForwardOutput(logits: logits, hidden: hidden)
    }

    /// Token (and learned position) embeddings for one token per row at its own position: `(B, 1, C)`.
    func batchedEmbedding(_ tokens: [Int], positions: [Int]) -> Tensor {
        var x = Tensor.embedding(embedding, ids: embeddingRows(of: tokens), shape: [tokens.count, 1])
        if config.embeddingScale != 1 { x = x.scaled(by: config.embeddingScale) }
        if let positionEmbedding {
            x = x.adding(Tensor.embedding(positionEmbedding, ids: positions, shape: [tokens.count, 1]))
        }
        return x
    }
}

extension TransformerBlock {
    /// `x (B, 1, C)`, row b at position `positions[b]` of the sequence in `caches[b]`.
    func batchedStep(_ x: Tensor, layer: Int, positions: [Int], rotary: RotaryEmbedding?, caches: [KVCache]) -> Tensor {
        let b = x.shape[0]
        let c = config
        let h = attentionNorm(x)  // (B, 1, C)
        let q = query(h).reshaped([b, 1, c.numHeads, c.headDim])  // (B, 1, H, D)
        let k = key(h).reshaped([b, 1, c.numKVHeads, c.headDim])  // (B, 1, Hkv, D)
        let v = value(h).reshaped([b, 1, c.numKVHeads, c.headDim])  // (B, 1, Hkv, D)
        // Rows sit at different positions and attend over different caches.
        var rows: [Tensor] = []
        rows.reserveCapacity(b)
        for row in 0..<b {
            var qRow = b == 1 ? q : q.sliced(axis: 0, row..<(row + 1))  // (1, 1, H, D)
            var kRow = b == 1 ? k : k.sliced(axis: 0, row..<(row + 1))  // (1, 1, Hkv, D)
            let vRow = b == 1 ? v : v.sliced(axis: 0, row..<(row + 1))
            if let rotary {
                qRow = qRow.rope(rotary, startPosition: positions[row])
                kRow = kRow.rope(rotary, startPosition: positions[row])
            }
            caches[row].store(layer: layer, keys: kRow, values: vRow)
            rows.append(caches[row].attention(query: qRow, layer: layer, scale: c.attentionScale, window: c.slidingWindow))
        }
        let attended = b == 1 ? rows[0] : Tensor.concatenate(rows, axis: 0)  // (B, 1, H, D)
        let afterAttention = x.adding(output(attended.reshaped([b, 1, c.numHeads * c.headDim])))  // (B, 1, C)
        let m = mlpNorm(afterAttention)
        let hidden: Tensor  // (B, 1, F)
        if let gate {
            hidden = gate(m).gated(with: up(m), activation: c.activation)
        } else {
            hidden = up(m).activated(c.activation)
        }
        return afterAttention.adding(down(hidden))
    }
}
