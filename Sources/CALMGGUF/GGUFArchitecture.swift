import CALMModels

/// Where one CALM parameter comes from in a GGUF file, and how it is turned back into the
/// Hugging Face layout the transformer uses.
public struct GGUFTensorSource: Sendable, Equatable {
    public enum Transform: Sendable, Equatable {
        case identity
        /// llama.cpp's converter interleaves the two rotary halves of every head's rows
        /// (`permute` in convert_hf_to_gguf.py); this undoes it for `heads` heads.
        case unpermuteRows(heads: Int)
        /// Added to every value: Gemma's GGUF norms store `1 + w`, the transformer wants `w`.
        case add(Float)
        /// Rows `part·n ..< (part+1)·n` of a tensor fusing `parts` projections (GPT-2's attn_qkv).
        case fusedPart(part: Int, parts: Int)
    }

    public var name: String
    public var transform: Transform

    public init(_ name: String, _ transform: Transform = .identity) {
        self.name = name
        self.transform = transform
    }
}

/// A `general.architecture` this project converts: how its hyper-parameter keys become a
/// `TransformerConfig` and which GGUF tensor feeds each CALM parameter.
public struct GGUFArchitecture: Sendable {
    public enum Family: String, Sendable, CaseIterable { case llama, mistral, qwen2, gemma, gpt2 }
    public let family: Family

    public static var supported: String { Family.allCases.map(\.rawValue).sorted().joined(separator: ", ") }

    public init(_ family: Family) { self.family = family }

    public static func named(_ name: String, path: String) throws -> GGUFArchitecture {
        guard let family = Family(rawValue: name) else {
            throw GGUFError(path: path, "general.architecture \"\(name)\" is not supported (supported: \(supported))")
        }
        return GGUFArchitecture(family)
    }

    /// llama.cpp permutes q/k rows for these (LlamaModel in convert_hf_to_gguf.py, which also
    /// serves Mistral); Qwen2, Gemma and GPT-2 are stored as Hugging Face has them.
    public var permutesQueryKey: Bool { family == .llama || family == .mistral }

    /// Hyper-parameter keys (after `<arch>.`) that are read, or known not to change the math.
    /// Any other key in the architecture's namespace is refused: it may change the model.
    var knownKeys: Set<String> {
        let shared: Set<String> = ["context_length", "embedding_length", "block_count", "feed_forward_length", "vocab_size",
                                   "attention.head_count", "attention.head_count_kv"]
        switch family {
        case .gpt2:
            return shared.union(["attention.layer_norm_epsilon"])
        case .llama, .mistral, .qwen2, .gemma:
            return shared.union(["attention.key_length", "attention.value_length", "attention.layer_norm_rms_epsilon",
                                 "rope.dimension_count", "rope.freq_base", "rope.scaling.type", "rope.scaling.factor",
                                 "rope.scaling.original_context_length", "rope.scaling.finetuned", "rope.scale_linear",
                                 "tensor_data_layout", "expert_count", "expert_used_count", "attention.sliding_window"])
        }
    }

    /// The transformer configuration of `file`, whose metadata is `m`.
    public func config(_ m: GGUFMetadata, file: GGUFFile) throws -> TransformerConfig {
        let a = family.rawValue
        for key in m.values.keys.sorted() where key.hasPrefix(a + ".") {
            let suffix = String(key.dropFirst(a.count + 1))
            guard knownKeys.contains(suffix) else {
                throw m.fail(key, "= \(m.values[key]?.summary ?? "") is not a hyper-parameter this converter knows for architecture \(a); refused because it may change the model's math")
            }
        }
        guard let embedding = file.tensor("token_embd.weight"), embedding.dims.count == 2 else {
            throw GGUFError(path: file.path, "lacks the 2-dimensional tensor token_embd.weight")
        }
        let vocab = embedding.dims[1]
        if let declared = try m.optionalInt("\(a).vocab_size"), declared != vocab {
            throw m.fail("\(a).vocab_size", "= \(declared) differs from the \(vocab) rows of token_embd.weight")
        }
        let hidden = try m.positive("\(a).embedding_length")
        let heads = try m.positive("\(a).attention.head_count")
        let layers = try m.positive("\(a).block_count")
        let ffn = try m.positive("\(a).feed_forward_length")
        let context = try m.positive("\(a).context_length")
        if family == .gpt2 {
            return try gpt2Config(m, vocab: vocab, hidden: hidden, heads: heads, layers: layers, ffn: ffn, context: context,
                                  tied: Self.headIsEmbedding(file))
        }

        let kvHeads = try m.positive("\(a).attention.head_count_kv", default: heads)
        guard m["\(a).attention.key_length"] != nil || hidden % heads == 0 else {
            throw m.fail("\(a).attention.head_count", "= \(heads) does not divide embedding_length \(hidden) and no attention.key_length is given")
        }
        let headDim = try m.positive("\(a).attention.key_length", default: hidden / heads)
        if let v = try m.optionalInt("\(a).attention.value_length"), v != headDim {
            throw m.fail("\(a).attention.value_length", "= \(v) differs from the key length \(headDim), which the transformer does not implement")
        }
        if let rotary = try m.optionalInt("\(a).rope.dimension_count"), rotary != headDim {
            throw m.fail("\(a).rope.dimension_count", "= \(rotary) is not the head dimension \(headDim): partial rotary embeddings are not implemented")
        }
        for key in ["expert_count", "expert_used_count"] {
            if let n = try m.optionalInt("\(a).\(key)"), n != 0 {
                throw m.fail("\(a).\(key)", "= \(n): mixture-of-experts models are not supported")
            }
        }
        var slidingWindow = try m.optionalInt("\(a).attention.sliding_window")
        if slidingWindow == 0 { slidingWindow = nil }
        if slidingWindow != nil, family == .qwen2 || family == .gemma {
            throw m.fail("\(a).attention.sliding_window", "is not supported for \(a) (per-layer windows are not implemented)")
        }
        let theta = try m.double("\(a).rope.freq_base", default: 10_000)
        var scaling = try GGUFRopeScaling.fromMetadata(m, architecture: a)
        if file.tensor("rope_freqs.weight") != nil {
            guard scaling == nil else {
                throw GGUFError(path: file.path, "holds both rope_freqs.weight and \(a).rope.scaling metadata; only one frequency rescaling can apply")
            }
            let (_, factors) = try file.floats("rope_freqs.weight")
            scaling = try GGUFRopeScaling.llama3(fitting: factors, headDim: headDim, theta: theta,
                                                 originalContext: try m.optionalInt("\(a).rope.scaling.original_context_length"),
                                                 path: file.path)
        }
        let has = { (name: String) in file.tensor(name) != nil }
        let qkvBias = has("blk.0.attn_q.bias")
        if family == .qwen2, !qkvBias {
            throw GGUFError(path: file.path, "lacks blk.0.attn_q.bias: a qwen2 model has q/k/v biases")
        }
        let gemma = family == .gemma
        let config = TransformerConfig(
            architecture: a, vocabSize: vocab, hiddenSize: hidden, numLayers: layers, numHeads: heads, numKVHeads: kvHeads,
            headDim: headDim, intermediateSize: ffn, maxPositions: context, norm: .rms,
            normEps: Float(try m.double("\(a).attention.layer_norm_rms_epsilon")), normWeightOffset: gemma ? 1 : 0,
            positions: .rope, ropeTheta: theta, activation: gemma ? .geluTanh : .silu, gatedMLP: true, qkvBias: qkvBias,
            attentionOutputBias: has("blk.0.attn_output.bias"), mlpBias: has("blk.0.ffn_up.bias"),
            tiedEmbeddings: Self.headIsEmbedding(file), embeddingScale: gemma ? Float(hidden).squareRoot() : 1, attentionScale: nil,
            ropeScaling: scaling, slidingWindow: slidingWindow)
        do { try config.validate() } catch { throw GGUFError(path: file.path, "\(error)") }
        return config
    }

    private func gpt2Config(_ m: GGUFMetadata, vocab: Int, hidden: Int, heads: Int, layers: Int, ffn: Int, context: Int,
                            tied: Bool) throws -> TransformerConfig {
        if let kv = try m.optionalInt("gpt2.attention.head_count_kv"), kv != heads {
            throw m.fail("gpt2.attention.head_count_kv", "= \(kv) differs from head_count \(heads); GPT-2 has no grouped-query attention")
        }
        guard hidden % heads == 0 else { throw m.fail("gpt2.attention.head_count", "= \(heads) does not divide embedding_length \(hidden)") }
        var config = TransformerConfig.gpt2(vocabSize: vocab, hiddenSize: hidden, numLayers: layers, numHeads: heads,
                                            maxPositions: context, normEps: Float(try m.double("gpt2.attention.layer_norm_epsilon")))
        config.intermediateSize = ffn
        config.tiedEmbeddings = tied
        do { try config.validate() } catch { throw GGUFError(path: m.path, "\(error)") }
        return config
    }

    /// Every CALM parameter of `config` with its GGUF source.
    public func sources(for config: TransformerConfig) -> [String: GGUFTensorSource] {
        var out: [String: GGUFTensorSource] = ["embed.weight": .init("token_embd.weight")]
        if !config.tiedEmbeddings { out["lm_head.weight"] = .init("output.weight") }
        let normShift: GGUFTensorSource.Transform = family == .gemma ? .add(-1) : .identity
        out["final_norm.weight"] = .init("output_norm.weight", normShift)
        if family == .gpt2 {
            out["pos_embed.weight"] = .init("position_embd.weight")
            out["final_norm.bias"] = .init("output_norm.bias")
        }
        for i in 0..<config.numLayers {
            let (c, g) = ("layers.\(i).", "blk.\(i).")
            out[c + "attn_norm.weight"] = .init(g + "attn_norm.weight", normShift)
            out[c + "mlp_norm.weight"] = .init(g + "ffn_norm.weight", normShift)
            out[c + "attn.o_proj.weight"] = .init(g + "attn_output.weight")
            out[c + "mlp.up_proj.weight"] = .init(g + "ffn_up.weight")
            out[c + "mlp.down_proj.weight"] = .init(g + "ffn_down.weight")
            if family == .gpt2 {
                for (part, proj) in ["q_proj", "k_proj", "v_proj"].enumerated() {
                    for kind in ["weight", "bias"] {
                        out[c + "attn.\(proj).\(kind)"] = .init(g + "attn_qkv.\(kind)", .fusedPart(part: part, parts: 3))
                    }
                }
                for (calm, gguf) in [("attn_norm", "attn_norm"), ("mlp_norm", "ffn_norm"), ("attn.o_proj", "attn_output"),
                                     ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down")] {
                    out[c + calm + ".bias"] = .init(g + gguf + ".bias")
                }
                continue
            }
            let qk: (Int) -> GGUFTensorSource.Transform = { permutesQueryKey ? .unpermuteRows(heads: $0) : .identity }
            for kind in ["weight"] + (config.qkvBias ? ["bias"] : []) {
                out[c + "attn.q_proj.\(kind)"] = .init(g + "attn_q.\(kind)", qk(config.numHeads))
                out[c + "attn.k_proj.\(kind)"] = .init(g + "attn_k.\(kind)", qk(config.numKVHeads))
                out[c + "attn.v_proj.\(kind)"] = .init(g + "attn_v.\(kind)")
            }
            if config.attentionOutputBias { out[c + "attn.o_proj.bias"] = .init(g + "attn_output.bias") }
            out[c + "mlp.gate_proj.weight"] = .init(g + "ffn_gate.weight")
            if config.mlpBias {
                for proj in ["gate", "up", "down"] { out[c + "mlp.\(proj)_proj.bias"] = .init(g + "ffn_\(proj).bias") }
            }
        }
        return out
    }

    /// Whether the output head is the token embedding: no output.weight, or one that repeats
    /// token_embd byte for byte (llama.cpp's converter writes such a copy for GPT-2, whose head
    /// is tied), which is then not stored twice.
    public static func headIsEmbedding(_ file: GGUFFile) -> Bool {
        guard let head = file.tensor("output.weight") else { return true }
        guard let embedding = file.tensor("token_embd.weight"), head.type == embedding.type, head.dims == embedding.dims else {
            return false
        }
        return file.rawBytes(head) == file.rawBytes(embedding)
    }

    /// Tensors a file may hold that are not parameters of `config` but were read while
    /// configuring it: llama3 rope divisors, and an output head that repeats the embedding.
    public func isConsumedElsewhere(_ name: String, config: TransformerConfig) -> Bool {
        name == "rope_freqs.weight" || (name == "output.weight" && config.tiedEmbeddings)
    }
}
