import CALMTensor

/// Token ids for a batch of equally long sequences, row-major `(B, T)`.
public struct TokenBatch: Sendable {
    public let ids: [Int]
    public let batch: Int
    public let length: Int

    public init(ids: [Int], batch: Int, length: Int) {
        precondition(ids.count == batch * length, "TokenBatch: \(ids.count) ids for \(batch) x \(length)")
        self.ids = ids
        self.batch = batch
        self.length = length
    }

    public init(_ sequence: [Int]) { self.init(ids: sequence, batch: 1, length: sequence.count) }
}

/// Called after block `layer` with its output `(B, T, C)`; returns what the next block sees.
/// CALM's composition adds its cross-attention here.
public typealias BlockHook = (_ layer: Int, _ hidden: Tensor) -> Tensor

/// What a forward pass produced.
public struct ForwardOutput {
    /// `(B, T, vocab)`, when requested.
    public var logits: Tensor?
    /// Outputs of the requested blocks (after any hook), `(B, T, C)` each.
    public var hidden: [Int: Tensor]
}

/// A decoder-only transformer language model.
public final class TransformerLM {
    public let config: TransformerConfig
    /// `(V, C)`, float32 unless quantized on request (`calm quantize --embeddings`).
    public let embedding: WeightMatrix
    public let positionEmbedding: Tensor?  // (P, C), learned positions only
    public let blocks: [TransformerBlock]
    public let finalNorm: Norm
    /// `(V, C)`; nil when tied to the token embedding.
    public let head: WeightMatrix?

    /// The token embedding as float32: the tensor itself, or a dequantized copy when quantized.
    public var tokenEmbedding: Tensor { embedding.floatTensor() }
    /// The untied output head as float32 (a dequantized copy when quantized).
    public var lmHead: Tensor? { head?.floatTensor() }
    let rotary: RotaryEmbedding?
    /// With `config.storedTokens`: the embedding row of every token id (the last row for
    /// tokens the model does not store).
    let rowOfToken: [Int]?

    /// A model with freshly initialised weights drawn from `seed`.
    public convenience init(config: TransformerConfig, seed: UInt64) throws {
        var weights = RandomWeights(seed: seed)
        try self.init(config: config, weights: &weights)
    }

    /// A model whose weights come from `weights` (random initialisation or a checkpoint), each
    /// requested once by its checkpoint name, in the order `parameters` lists them.
    public init(config: TransformerConfig, weights w: inout some WeightSource) throws {
        try config.validate()
        self.config = config
        let (rows, width) = (config.embeddingRows, config.hiddenSize)
        embedding = try w.matrix("embed.weight", shape: [rows, width], initial: .normal(std: 0.02))
        positionEmbedding = config.positions == .learned
            ? try w.weight("pos_embed.weight", shape: [config.maxPositions, width], initial: .normal(std: 0.01))
            : nil
        blocks = try (0..<config.numLayers).map { try TransformerBlock("layers.\($0)", config: config, weights: &w) }
        finalNorm = try Norm("final_norm", config: config, weights: &w)
        head = config.tiedEmbeddings ? nil : try w.matrix("lm_head.weight", shape: [rows, width], initial: .normal(std: 0.02))
        rotary = config.positions == .rope ? RotaryEmbedding(config: config) : nil
        rowOfToken = config.storedTokens.map { stored in
            var rows = [Int](repeating: stored.count, count: config.vocabSize)
            for (row, id) in stored.enumerated() { rows[id] = row }
            return rows
        }
    }

    /// Every stored weight with its dotted checkpoint name, in a stable order (construction
    /// order), quantized projections included.
    public var weights: NamedWeights {
        var out: NamedWeights = [("embed.weight", embedding)]
        if let positionEmbedding { out.append(("pos_embed.weight", .dense(positionEmbedding))) }
        for (i, block) in blocks.enumerated() { out += block.weights("layers.\(i)") }
        out += finalNorm.weights("final_norm")
        if let head { out.append(("lm_head.weight", head)) }
        return out
    }

    /// Every float32 parameter with its dotted checkpoint name, in the same order; quantized
    /// weights are not parameters (they never train).
    public var parameters: NamedParameters {
        weights.compactMap { name, w in w.dense.map { (name, $0) } }
    }

    /// Logical number of values, quantized weights included.
    public var parameterCount: Int { weights.reduce(0) { $0 + $1.weight.count } }

    /// Whether any weight is stored quantized (such a model can run, and pass gradients to
    /// bridges, but not train its own weights).
    public var isQuantized: Bool { weights.contains { $0.weight.quantized != nil } }

    /// Freezes (or unfreezes) every weight: frozen weights get no gradient buffers and no
    /// weight-gradient work, while gradients still flow through them to their inputs.
    /// Unfreezing a quantized model is a programming error: callers check `isQuantized` first
    /// and tell the user (quantized weights have no gradient to take).
    public func setTrainable(_ trainable: Bool) {
        precondition(!trainable || !isQuantized, "a model with quantized weights cannot be made trainable")
        for (_, t) in parameters {
            t.requiresGrad = trainable
            if !trainable { t.grad = nil }
        }
    }

    /// Every projection of every block (attention and MLP), for attaching adapters.
    public var projections: [(name: String, layer: Linear)] {
        blocks.enumerated().flatMap { i, b in
            [("layers.\(i).attn.q_proj", b.query), ("layers.\(i).attn.k_proj", b.key), ("layers.\(i).attn.v_proj", b.value),
             ("layers.\(i).attn.o_proj", b.output)] + (b.gate.map { [("layers.\(i).mlp.gate_proj", $0)] } ?? [])
                + [("layers.\(i).mlp.up_proj", b.up), ("layers.\(i).mlp.down_proj", b.down)]
        }
    }

    /// Freezes the model and attaches a rank-`rank` LoRA adapter to every projection;
    /// returns the adapters' parameters (the only trainable ones).
    public func attachLowRankAdapters(rank: Int, alpha: Float, seed: UInt64) -> NamedParameters {
        setTrainable(false)
        var g = SeededGenerator(seed: seed)
        var out: NamedParameters = []
        for (name, layer) in projections {
            let adapter = LowRankAdapter(inFeatures: layer.weight.shape[1], outFeatures: layer.weight.shape[0],
                                         rank: rank, alpha: alpha, generator: &g)
            layer.slot.adapter = adapter
            out += [("\(name).lora_a", adapter.down), ("\(name).lora_b", adapter.up)]
        }
        return out
    }

    /// Folds every adapter into its weight (W += scale · B A) and removes it.
    public func mergeLowRankAdapters() {
        for (_, layer) in projections {
            guard let adapter = layer.slot.adapter else { continue }
            // Callers refuse LoRA on quantized models before training, so this is a bug if hit.
            guard let weight = layer.weight.dense else { preconditionFailure("cannot merge an adapter into a quantized weight") }
            let delta = adapter.delta
            for i in 0..<delta.count { weight.data[i] += delta[i] }
            layer.slot.adapter = nil
        }
    }

    public func makeCache(batch: Int = 1, capacity: Int? = nil) -> KVCache {
        KVCache(layers: config.numLayers, batch: batch, capacity: capacity ?? config.maxPositions,
                kvHeads: config.numKVHeads, headDim: config.headDim)
    }

    /// Token (and learned position) embeddings for positions `start ..< start + T`: `(B, T, C)`.
    public func embed(_ tokens: TokenBatch, startPosition start: Int = 0) -> Tensor {
        var x = Tensor.embedding(embedding, ids: embeddingRows(of: tokens.ids), shape: [tokens.batch, tokens.length])
        if config.embeddingScale != 1 { x = x.scaled(by: config.embeddingScale) }
        if let positionEmbedding {
            let positions = (start..<(start + tokens.length)).map { $0 }
            let p = Tensor.embedding(positionEmbedding, ids: positions, shape: [tokens.length, 1])
                .reshaped([tokens.length, config.hiddenSize])  // (T, C), broadcast over the batch
            x = x.adding(p)
        }
        return x
    }

    /// Runs block `layer` on `x (B, T, C)` at positions starting at `start`.
    public func runBlock(_ layer: Int, _ x: Tensor, startPosition start: Int = 0, cache: KVCache? = nil) -> Tensor {
        blocks[layer](x, layer: layer, start: start, rotary: rotary, cache: cache)
    }

    /// The embedding rows that hold `ids` (the ids themselves unless the model stores a subset).
    func embeddingRows(of ids: [Int]) -> [Int] {
        guard let rowOfToken else { return ids }
        return ids.map { rowOfToken[$0] }
    }

    /// Final norm and output projection: `(B, T, C) -> (B, T, V)`. A model that stores a
    /// subset of the vocabulary gives every other token a logit of -inf.
    public func logits(fromHidden h: Tensor) -> Tensor {
        guard let stored = config.storedTokens else { return storedLogits(fromHidden: h) }
        return storedLogits(fromHidden: h).spreadingColumns(stored, width: config.vocabSize, fill: -.infinity)
    }

    /// Entropy in nats of the next-token distribution at every position, `(B, T, C) -> (B, T, 1)`,
    /// from the last block's output (over the stored tokens only: the others have probability 0).
    public func predictionEntropy(fromHidden h: Tensor) -> Tensor {
        storedLogits(fromHidden: h).softmaxEntropy()
    }

    /// Surprisal in nats of a given next token at every position, `-log p(next[r])` for row r of
    /// the last block's output `(B, T, C)`; +inf for a token the model never predicts (or no token, -1).
    public func predictionSurprisal(fromHidden h: Tensor, ofNext next: [Int]) -> [Float] {
        let columns = next.map { id -> Int in
            guard (0..<config.vocabSize).contains(id) else { return -1 }
            return rowOfToken?[id] ?? id  // an unstored token's row is past the stored logits: +inf
        }
        return storedLogits(fromHidden: h).rowSurprisal(of: columns)
    }

    /// Logits over the stored tokens only: `(B, T, V)`, or `(B, T, stored)` with `storedTokens`
    /// (the extra row for unstored tokens is an input only and never scored).
    func storedLogits(fromHidden h: Tensor) -> Tensor {
        let all = finalNorm(h).linear(head ?? embedding)
        guard let stored = config.storedTokens else { return all }
        return all.sliced(axis: all.rank - 1, 0..<stored.count)
    }

    /// A forward pass.
    ///
    /// - `cache`: continue from the cached positions and append the new ones (inference).
    /// - `collect`: block indices whose outputs to return (-1: the embedding output).
    /// - `upTo`: stop after this block (no logits); nil runs the whole model.
    /// - `hook`: transforms each block's output before the next block sees it.
    /// - `prefix`: the output of block `layer` computed earlier (before any hook) for these
    ///   tokens; the pass resumes from there (frozen activations reused across epochs).
    public func forward(
        _ tokens: TokenBatch, cache: KVCache? = nil, collect: Set<Int> = [], upTo lastLayer: Int? = nil,
        prefix: (layer: Int, hidden: Tensor)? = nil, hook: BlockHook? = nil
    ) -> ForwardOutput {
        precondition(prefix == nil || cache == nil, "forward: a prefix cannot continue a cache")
        let start = cache?.length ?? 0
        var h = prefix?.hidden ?? embed(tokens, startPosition: start)  // (B, T, C)
        var hidden: [Int: Tensor] = [:]
        let last = lastLayer ?? (config.numLayers - 1)
        // Layer -1 is the embedding output: hooks and `collect` see it before block 0.
        for layer in (prefix.map { $0.layer } ?? -1)...last {
            if layer >= 0, prefix?.layer != layer { h = runBlock(layer, h, startPosition: start, cache: cache) }
            if let hook { h = hook(layer, h) }
            if collect.contains(layer) { hidden[layer] = h }
        }
        cache?.advance(by: tokens.length)
        let logits = lastLayer == nil ? self.logits(fromHidden: h) : nil
        return ForwardOutput(logits: logits, hidden: hidden)
    }

    /// Appends `tokens` (one sequence) to `cache` and returns the logits after the last one:
    /// the output projection runs for that position only, not for every prompt position.
    public func lastPositionLogits(_ tokens: TokenBatch, cache: KVCache, hook: BlockHook? = nil) -> [Float] {
        let last = config.numLayers - 1
        let h = forward(tokens, cache: cache, collect: [last], upTo: last, hook: hook).hidden[last]!  // (1, T, C)
        return logits(fromHidden: h.gatheringRows([tokens.length - 1])).data  // (1, V)
    }

    /// Mean next-token cross-entropy of `tokens`, scoring position t+1 from position t where
    /// `lossMask[b·T + t + 1]` is true (all positions when no mask is given).
    public func loss(_ tokens: TokenBatch, lossMask: [Bool]? = nil, hook: BlockHook? = nil) -> Tensor {
        let last = config.numLayers - 1
        let h = forward(tokens, collect: [last], upTo: last, hook: hook).hidden[last]!  // (B, T, C)
        return loss(finalHidden: h, tokens: tokens, lossMask: lossMask)
    }

    /// The loss from the last block's output `(B, T, C)`: final norm, output projection and
    /// cross-entropy are computed for scored positions only (prompt and padding rows skipped).
    public func loss(finalHidden h: Tensor, tokens: TokenBatch, lossMask: [Bool]?) -> Tensor {
        let targets = Self.shiftedTargets(tokens, lossMask: lossMask)
        let rows = targets.indices.filter { targets[$0] >= 0 }
        let scored = rows.count == targets.count ? h : h.gatheringRows(rows)
        let scoredTargets = rows.map { targets[$0] }
        // A subset model scores over its stored tokens; a target it does not store has
        // probability 0, which only the full logits can express (an infinite loss).
        if let stored = config.storedTokens, let rowOfToken, scoredTargets.allSatisfy({ rowOfToken[$0] < stored.count }) {
            return storedLogits(fromHidden: scored).crossEntropy(targets: scoredTargets.map { rowOfToken[$0] })
        }
        return logits(fromHidden: scored).crossEntropy(targets: scoredTargets)
    }

    /// Targets for next-token prediction: row (b, t) predicts token (b, t+1); -100 = ignored.
    public static func shiftedTargets(_ tokens: TokenBatch, lossMask: [Bool]?) -> [Int] {
        var targets = [Int](repeating: -100, count: tokens.ids.count)
        for b in 0..<tokens.batch {
            for t in 0..<(tokens.length - 1) {
                let next = b * tokens.length + t + 1
                if lossMask?[next] ?? true { targets[b * tokens.length + t] = tokens.ids[next] }
            }
        }
        return targets
    }
}
