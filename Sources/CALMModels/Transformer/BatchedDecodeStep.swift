import CALMTensor

/// One step for several independent sequences at once (continuous batching): every sequence
/// feeds its new tokens (one while decoding, a whole prompt when it joins), each with its own
/// `KVCache` (batch 1) at its own length. All the new tokens are packed into one `(N, 1, C)`
/// batch, N the total, so the projections and MLPs run as one `(N, C) x W` product per weight;
/// only rotary positions and causal attention, which depend on each sequence's own cache, run
/// per sequence.
extension TransformerLM {
    /// Feeds `tokens[b]` to the sequence cached in `caches[b]` (one token each): hidden states
    /// `(B, 1, C)` and logits `(B, V)`; see `packedStep`.
    public func batchedStep(_ tokens: [Int], caches: [KVCache], collect: Set<Int> = [], upTo lastLayer: Int? = nil,
                            hook: BlockHook? = nil) -> ForwardOutput {
        packedStep(tokens.map { [$0] }, caches: caches, collect: collect, upTo: lastLayer, hook: hook)
    }

    /// Feeds `tokens[b]` (at least one token) to the sequence cached in `caches[b]`.
    ///
    /// - `collect`: block outputs to return, `(N, 1, C)` each (-1: the embedding output), the
    ///   rows of sequence b at `PackedRows(tokens).spans[b]`.
    /// - `upTo`: stop after this block (no logits); nil runs the whole model and returns
    ///   logits `(B, V)` after each sequence's last new token.
    /// - `hook`: rewrites a block's output `(N, 1, C)` before the next block sees it.
    /// Inference only (run inside `withoutGradients`).
    public func packedStep(_ tokens: [[Int]], caches: [KVCache], collect: Set<Int> = [], upTo lastLayer: Int? = nil,
                           hook: BlockHook? = nil) -> ForwardOutput {
        precondition(tokens.count == caches.count && !tokens.isEmpty && tokens.allSatisfy { !$0.isEmpty },
                     "packedStep: tokens for every cache")
        let packed = PackedRows(tokens)
        let starts = caches.map(\.length)
        var h = packedEmbedding(tokens, starts: starts)  // (N, 1, C)
        var hidden: [Int: Tensor] = [:]
        let last = lastLayer ?? (config.numLayers - 1)
        for layer in -1...last {
            if layer >= 0 {
                h = blocks[layer].packedStep(h, layer: layer, spans: packed.spans, starts: starts, rotary: rotary, caches: caches)
            }
            if let hook { h = hook(layer, h) }
            if collect.contains(layer) { hidden[layer] = h }
        }
        for (cache, row) in zip(caches, tokens) { cache.advance(by: row.count) }
        guard lastLayer == nil else { return ForwardOutput(logits: nil, hidden: hidden) }
        let finals = packed.count == tokens.count ? h : h.gatheringRows(packed.spans.map { $0.upperBound - 1 })
        return ForwardOutput(logits: logits(fromHidden: finals).reshaped([tokens.count, config.vocabSize]), hidden: hidden)
    }

    /// Token (and learned position) embeddings of every new token at its own position: `(N, 1, C)`.
    func packedEmbedding(_ tokens: [[Int]], starts: [Int]) -> Tensor {
        let ids = tokens.flatMap { $0 }
        var x = Tensor.embedding(embedding, ids: embeddingRows(of: ids), shape: [ids.count, 1])
        if config.embeddingScale != 1 { x = x.scaled(by: config.embeddingScale) }
        if let positionEmbedding {
            let positions = zip(tokens, starts).flatMap { row, start in start..<(start + row.count) }
            x = x.adding(Tensor.embedding(positionEmbedding, ids: positions, shape: [ids.count, 1]))
        }
        return x
    }
}

/// Where each sequence's new tokens sit among the packed rows.
public struct PackedRows {
    /// Rows `spans[b]` of the packed batch belong to sequence b.
    public let spans: [Range<Int>]
    /// All rows.
    public let count: Int

    public init(_ tokens: [[Int]]) {
        var spans: [Range<Int>] = []
        var next = 0
        for row in tokens {
            spans.append(next..<(next + row.count))
            next += row.count
        }
        self.spans = spans
        count = next
    }
}

extension Tensor {
    /// Rows `span` of a packed `(N, 1, ...)` batch as one sequence `(1, L, ...)` (the same values).
    public func packedRows(_ span: Range<Int>) -> Tensor {
        let rows = span.count == shape[0] ? self : sliced(axis: 0, span)
        return rows.reshaped([1, span.count] + shape.dropFirst(2))
    }

    /// A sequence `(1, L, ...)` back as packed rows `(L, 1, ...)`.
    public func unpackedRows() -> Tensor { reshaped([shape[1], 1] + shape.dropFirst(2)) }
}

extension TransformerBlock {
    /// `x (N, 1, C)`: rows `spans[b]` are new tokens of the sequence in `caches[b]`, at
    /// positions `starts[b] ..< starts[b] + spans[b].count`.
    func packedStep(_ x: Tensor, layer: Int, spans: [Range<Int>], starts: [Int], rotary: RotaryEmbedding?,
                    caches: [KVCache]) -> Tensor {
        let n = x.shape[0]
        let c = config
        let h = attentionNorm(x)  // (N, 1, C)
        let q = query(h).reshaped([n, 1, c.numHeads, c.headDim])  // (N, 1, H, D)
        let k = key(h).reshaped([n, 1, c.numKVHeads, c.headDim])  // (N, 1, Hkv, D)
        let v = value(h).reshaped([n, 1, c.numKVHeads, c.headDim])  // (N, 1, Hkv, D)
        // Sequences sit at different positions and attend over different caches.
        var rows: [Tensor] = []
        rows.reserveCapacity(spans.count)
        for (b, span) in spans.enumerated() {
            var qRow = q.packedRows(span)  // (1, L, H, D)
            var kRow = k.packedRows(span)  // (1, L, Hkv, D)
            let vRow = v.packedRows(span)
            if let rotary {
                qRow = qRow.rope(rotary, startPosition: starts[b])
                kRow = kRow.rope(rotary, startPosition: starts[b])
            }
            caches[b].store(layer: layer, keys: kRow, values: vRow)
            rows.append(caches[b].attention(query: qRow, layer: layer, scale: c.attentionScale, window: c.slidingWindow).unpackedRows())
        }
        let attended = rows.count == 1 ? rows[0] : Tensor.concatenate(rows, axis: 0)  // (N, 1, H, D)
        let afterAttention = output(attended.reshaped([n, 1, c.numHeads * c.headDim]), residual: x)  // (N, 1, C)
        let m = mlpNorm(afterAttention)
        let hidden: Tensor  // (N, 1, F)
        if let gate {
            hidden = gate(m).gated(with: up(m), activation: c.activation)
        } else {
            hidden = up(m).activated(c.activation)
        }
        return down(hidden, residual: afterAttention)
    }
}
