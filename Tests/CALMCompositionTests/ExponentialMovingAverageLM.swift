import CALMCheckpoint
import CALMComposition
import CALMModels
import CALMSupport
import CALMTensor
import CALMTokenizers
import Foundation

/// Configuration of the toy recurrent augment, stored as the checkpoint's `config` attribute.
struct EMAConfig: Codable, Equatable {
    static let architecture = "ema-lm"

    var architecture = EMAConfig.architecture
    var vocabSize: Int
    /// Width of the token embedding, the input of block 0.
    var embeddingWidth: Int
    /// Output width of each block; they differ on purpose, so that `outputWidth(ofLayer:)` is
    /// exercised per layer (every transformer block has the same width).
    var widths: [Int]
    /// Per-block decay of the running average, in [0, 1).
    var decays: [Float]

    enum CodingKeys: String, CodingKey {
        case architecture, widths, decays
        case vocabSize = "vocab_size", embeddingWidth = "embedding_width"
    }

    var layerCount: Int { widths.count }
    /// Width of block `b`'s input, which is also the width of its running state.
    func inputWidth(ofLayer b: Int) -> Int { b == 0 ? embeddingWidth : widths[b - 1] }

    func validate() throws {
        guard architecture == Self.architecture else { throw ConfigError("architecture \"\(architecture)\" is not \(Self.architecture)") }
        guard vocabSize > 0, embeddingWidth > 0, !widths.isEmpty, widths.allSatisfy({ $0 > 0 }) else {
            throw ConfigError("vocabulary, embedding and block widths must be positive, with at least one block")
        }
        guard decays.count == widths.count, decays.allSatisfy({ $0 >= 0 && $0 < 1 }) else {
            throw ConfigError("need one decay in [0, 1) per block, got \(decays) for \(widths.count) blocks")
        }
    }

    /// Canonical JSON (sorted keys), so equal configurations give equal content hashes.
    func jsonString() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    static func parse(json: String) throws -> EMAConfig {
        let config = try JSONDecoder().decode(EMAConfig.self, from: Data(json.utf8))
        try config.validate()
        return config
    }
}

struct ConfigError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

/// A small non-transformer language model used as a CALM augment: a token embedding followed
/// by `L` recurrent blocks. Block `b` keeps an exponential moving average of its input,
///
///     s_b[t] = d_b · s_b[t-1] + (1 - d_b) · x_b[t]          (s_b[-1] = 0)
///     h_b[t] = tanh(W_b · s_b[t] + U_b · x_b[t] + c_b)
///
/// with `x_0 = embedding(token)` and `x_b = h_{b-1}`. It has no attention and no KV cache: its
/// decoding state is one vector per block, whatever the sequence length. As an augment only the
/// block outputs are read, so it carries no output head.
final class ExponentialMovingAverageLM {
    let config: EMAConfig
    let tokenEmbedding: Tensor  // (V, E)
    let stateProjections: [Tensor]  // W_b (C_b, C_{b-1})
    let inputProjections: [Tensor]  // U_b (C_b, C_{b-1})
    let biases: [Tensor]  // c_b (C_b)

    init(config: EMAConfig, weights: inout some WeightSource) throws {
        try config.validate()
        self.config = config
        tokenEmbedding = try weights.weight("embed_tokens.weight", shape: [config.vocabSize, config.embeddingWidth],
                                            initial: .normal(std: 1))
        var w: [Tensor] = [], u: [Tensor] = [], c: [Tensor] = []
        for b in 0..<config.layerCount {
            let (inW, outW) = (config.inputWidth(ofLayer: b), config.widths[b])
            // 1/sqrt(in) keeps the pre-activations near unit scale, so tanh is not saturated
            // and every block's output still depends on its input.
            let std = 1 / Float(inW).squareRoot()
            w.append(try weights.weight("blocks.\(b).state_proj.weight", shape: [outW, inW], initial: .normal(std: std)))
            u.append(try weights.weight("blocks.\(b).input_proj.weight", shape: [outW, inW], initial: .normal(std: std)))
            c.append(try weights.weight("blocks.\(b).input_proj.bias", shape: [outW], initial: .normal(std: 0.1)))
        }
        stateProjections = w
        inputProjections = u
        biases = c
    }

    convenience init(config: EMAConfig, seed: UInt64) throws {
        var weights = RandomWeights(seed: seed)
        try self.init(config: config, weights: &weights)
    }

    /// The causal averaging kernel of block `b` for `length` positions, `(T, T)` row-major:
    /// `K[t][k] = (1 - d) · d^(t-k)` for `k <= t`, else 0, so that `s = K · x` is the whole
    /// recurrence at once. The batch path uses it; the decoder runs the recurrence step by
    /// step, so the two paths compute the same function in different ways.
    func averagingKernel(block b: Int, length: Int) -> [Float] {
        let d = config.decays[b]
        var kernel = [Float](repeating: 0, count: length * length)
        for t in 0..<length {
            for k in 0...t { kernel[t * length + k] = (1 - d) * Float(pow(Double(d), Double(t - k))) }
        }
        return kernel
    }

    /// Block `b` applied to its running averages and inputs, both `(..., C_{b-1})`: `(..., C_b)`.
    func blockOutput(_ b: Int, states: Tensor, inputs: Tensor) -> Tensor {
        states.linear(stateProjections[b]).adding(inputs.linear(inputProjections[b], bias: biases[b])).tanh()
    }

    /// Checkpoint writing: the common CALM header, this model's config and tokenizer, the
    /// content hash, every tensor, and the seal. `extra` may change the file before it is
    /// sealed (tests write damaged checkpoints with it). Returns the content hash.
    @discardableResult
    func save(tokenizer: any Tokenizer, to path: String, extra: ((HDF5File) throws -> Void)? = nil) throws -> String {
        let configJSON = try config.jsonString()
        let hash = try ContentHash.of(configurationJSON: configJSON, tokenizer: tokenizer, parameters: parameters)
        try writeAtomically(to: path) { temporary in
            let file = try HDF5File.create(temporary)
            try writeCheckpointHeader(file, kind: "model")
            try file.setAttribute("model_type", config.architecture)
            try file.setAttribute("config", configJSON)
            try file.setAttribute("tokenizer", try tokenizer.serialized())
            try file.setAttribute(ContentHash.attribute, hash)
            try writeTensors(parameters, to: file)
            try extra?(file)
            try sealCheckpoint(file)
            try file.close()
        }
        return hash
    }

    /// The runtime's loader: builds the model from an open checkpoint whose header was read,
    /// reading every weight straight from `/tensors` and refusing extra tensors.
    static func read(_ file: HDF5File, header: ModelHeader) throws -> ExponentialMovingAverageLM {
        let config: EMAConfig
        do { config = try EMAConfig.parse(json: header.configJSON) } catch {
            throw CheckpointError(path: file.path, message: "ema-lm config: \(error)")
        }
        guard header.modelType == config.architecture else {
            throw CheckpointError(path: file.path, message: "model_type \"\(header.modelType)\" disagrees with config architecture \"\(config.architecture)\"")
        }
        guard header.tokenizer.vocabularySize <= config.vocabSize else {
            throw CheckpointError(path: file.path, message: "tokenizer has \(header.tokenizer.vocabularySize) tokens but the model only \(config.vocabSize)")
        }
        var weights = try CheckpointWeights(file: file)
        let model = try ExponentialMovingAverageLM(config: config, weights: &weights)
        try weights.finish()
        return model
    }

    /// Registers the "ema" runtime serving the "ema-lm" family. Registering again replaces the
    /// runtime with an identical one, so every test may call this without ordering concerns.
    static func registerRuntime() throws {
        try ArchitectureRegistry.register(runtime: "ema", families: [EMAConfig.architecture]) { file, header in
            try ExponentialMovingAverageLM.read(file, header: header)
        }
    }
}

extension ExponentialMovingAverageLM: AugmentModel {
    var layerCount: Int { config.layerCount }
    func outputWidth(ofLayer layer: Int) -> Int { config.widths[layer] }
    /// A recurrence has no position limit: the state does not grow with the sequence.
    var maxContext: Int { .max }

    var parameters: NamedParameters {
        var out: NamedParameters = [("embed_tokens.weight", tokenEmbedding)]
        for b in 0..<config.layerCount {
            out.append(("blocks.\(b).state_proj.weight", stateProjections[b]))
            out.append(("blocks.\(b).input_proj.weight", inputProjections[b]))
            out.append(("blocks.\(b).input_proj.bias", biases[b]))
        }
        return out
    }

    var configurationJSON: String { (try? config.jsonString()) ?? "" }

    func hiddenStates(_ tokens: TokenBatch, layers: Set<Int>) -> [Int: Tensor] {
        guard let last = layers.max() else { return [:] }
        let (B, T) = (tokens.batch, tokens.length)
        return withoutGradients {
            var x = Tensor.embedding(tokenEmbedding, ids: tokens.ids, shape: [B, T])  // (B, T, E)
            var out: [Int: Tensor] = [:]
            for b in 0...last {
                // One copy of the kernel per sequence: matmul batches over matching leading dims.
                let kernel = averagingKernel(block: b, length: T)
                let k = Tensor(shape: [B, T, T], data: Array([[Float]](repeating: kernel, count: B).joined()))  // (B, T, T)
                let s = k.matmul(x)  // (B, T, C_{b-1})
                x = blockOutput(b, states: s, inputs: x)  // (B, T, C_b)
                if layers.contains(b) { out[b] = x }
            }
            return out
        }
    }

    /// Per block: two (C_b × C_{b-1}) products and the average's C_{b-1} multiply-adds, ×2.
    /// No attention, so `span` does not matter.
    func forwardFLOPsPerToken(throughLayer layer: Int, span: Int) -> Double {
        (0...layer).reduce(0) { total, b in
            let (inW, outW) = (config.inputWidth(ofLayer: b), config.widths[b])
            return total + 2 * Double(2 * outW * inW + inW)
        }
    }

    /// One running average per block, whatever `capacity` is.
    func decodingStateBytes(capacity: Int) -> Int {
        (0..<config.layerCount).reduce(0) { $0 + config.inputWidth(ofLayer: $1) } * MemoryLayout<Float>.size
    }

    func makeDecoder(capacity: Int) -> EMADecoder { EMADecoder(model: self) }
}

/// Decodes one sequence with the recurrent state: one running average per block, updated
/// token by token. Nothing grows with the sequence (no KV cache).
final class EMADecoder: AugmentDecoder {
    let model: ExponentialMovingAverageLM
    /// `states[b]`: block b's running average s_b after the last token fed, `(C_{b-1})`.
    private(set) var states: [[Float]]
    /// Tokens each block has consumed; blocks above the deepest one asked for fall behind.
    private(set) var positions: [Int]

    init(model: ExponentialMovingAverageLM) {
        self.model = model
        states = (0..<model.config.layerCount).map { [Float](repeating: 0, count: model.config.inputWidth(ofLayer: $0)) }
        positions = Array(repeating: 0, count: model.config.layerCount)
    }

    func hiddenStates(_ tokens: TokenBatch, layers: Set<Int>) -> [Int: Tensor] {
        precondition(tokens.batch == 1, "EMADecoder decodes one sequence, got a batch of \(tokens.batch)")
        guard let last = layers.max() else { return [:] }
        // A block that skipped tokens has a stale average; its outputs would be silently wrong.
        precondition(positions[0...last].allSatisfy { $0 == positions[0] },
                     "EMADecoder: blocks 0...\(last) have consumed \(positions[0...last]) tokens; ask for the same layers every call")
        return withoutGradients {
            var outputs: [Int: [Tensor]] = [:]
            for id in tokens.ids {
                var x = Tensor.embedding(model.tokenEmbedding, ids: [id], shape: [1, 1])  // (1, 1, E)
                for b in 0...last {
                    let d = model.config.decays[b]
                    for i in 0..<states[b].count { states[b][i] = d * states[b][i] + (1 - d) * x.data[i] }
                    let s = Tensor(shape: [1, 1, states[b].count], data: states[b])  // (1, 1, C_{b-1})
                    x = model.blockOutput(b, states: s, inputs: x)  // (1, 1, C_b)
                    positions[b] += 1
                    if layers.contains(b) { outputs[b, default: []].append(x) }
                }
            }
            return outputs.mapValues { Tensor.concatenate($0, axis: 1) }  // (1, T, C_b) each
        }
    }
}
