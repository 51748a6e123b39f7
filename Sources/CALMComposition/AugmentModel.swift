import CALMModels
import CALMTensor

/// What a composition needs from a frozen expert (augment) model.
///
/// `TransformerLM` conforms; a new architecture conforms to this protocol and registers a
/// runtime with `ArchitectureRegistry`, and composition code stays unchanged.
public protocol AugmentModel: AnyObject {
    /// Incremental state for decoding (a KV cache, a recurrent state, ...).
    associatedtype Decoder: AugmentDecoder

    /// Number of blocks whose outputs can be connected.
    var layerCount: Int { get }
    /// Width of block `layer`'s output.
    func outputWidth(ofLayer layer: Int) -> Int
    /// The longest sequence the model can hold; `Int.max` when nothing limits it (a recurrent
    /// model, whose state has a fixed size).
    var maxContext: Int { get }
    /// Every float32 weight with its checkpoint name (for freezing).
    var parameters: NamedParameters { get }
    /// Every stored weight, quantized ones included (for content hashes and sizes).
    var weights: NamedWeights { get }
    /// The configuration as canonical JSON (part of the content hash).
    var configurationJSON: String { get }
    /// Outputs of the given blocks for a whole batch, `(B, T, width)` each, without gradients.
    func hiddenStates(_ tokens: TokenBatch, layers: Set<Int>) -> [Int: Tensor]
    /// Multiply-add FLOPs (×2) per token of running blocks `0...layer` (none for −1) with attention
    /// over `span` keys (a model without attention ignores `span`).
    func forwardFLOPsPerToken(throughLayer layer: Int, span: Int) -> Double
    /// Bytes of decoding state for a sequence of `capacity` positions: a KV cache grows with it,
    /// a recurrent state does not. The cost report counts it per augment.
    func decodingStateBytes(capacity: Int) -> Int
    /// A fresh decoder for one sequence of up to `capacity` positions.
    func makeDecoder(capacity: Int) -> Decoder
}

/// One sequence being decoded by an augment, owning its incremental state (a transformer's KV
/// cache, a recurrent model's state): its own type, so no composition code knows which.
public protocol AugmentDecoder: AnyObject {
    /// Outputs of the given blocks for `tokens` appended after everything fed so far, `(1, T, width)` each.
    /// Callers ask for the same blocks on every call of one sequence (a composition's connected
    /// blocks), so a decoder may advance only the blocks up to the deepest one asked for.
    func hiddenStates(_ tokens: TokenBatch, layers: Set<Int>) -> [Int: Tensor]
}

extension AugmentModel {
    /// A model without quantized weights stores exactly its parameters.
    public var weights: NamedWeights { parameters.map { ($0.name, .dense($0.tensor)) } }

    public var parameterCount: Int { weights.reduce(0) { $0 + $1.weight.count } }

    /// Bytes its weights occupy in memory.
    public var weightBytes: Int { weights.reduce(0) { $0 + $1.weight.byteCount } }

    /// Freezes every weight: no gradient buffers, no weight-gradient work.
    public func freeze() {
        for (_, t) in parameters {
            t.requiresGrad = false
            t.grad = nil
        }
    }
}

extension TransformerLM: AugmentModel {
    public var layerCount: Int { config.numLayers }
    public func outputWidth(ofLayer layer: Int) -> Int { config.hiddenSize }
    public var configurationJSON: String { (try? config.jsonString()) ?? "" }

    public func hiddenStates(_ tokens: TokenBatch, layers: Set<Int>) -> [Int: Tensor] {
        guard let last = layers.max() else { return [:] }
        return withoutGradients { forward(tokens, collect: layers, upTo: last).hidden }
    }

    public func forwardFLOPsPerToken(throughLayer layer: Int, span: Int) -> Double {
        Double(layer + 1) * config.blockFLOPsPerToken(span: span)
    }

    public func decodingStateBytes(capacity: Int) -> Int {
        2 * config.numLayers * capacity * config.numKVHeads * config.headDim * MemoryLayout<Float>.size
    }

    public func makeDecoder(capacity: Int) -> TransformerAugmentDecoder {
        TransformerAugmentDecoder(model: self, cache: makeCache(batch: 1, capacity: capacity))
    }
}

/// A transformer augment decoding one sequence with its own KV cache.
public final class TransformerAugmentDecoder: AugmentDecoder {
    let model: TransformerLM
    let cache: KVCache

    init(model: TransformerLM, cache: KVCache) {
        self.model = model
        self.cache = cache
    }

    public func hiddenStates(_ tokens: TokenBatch, layers: Set<Int>) -> [Int: Tensor] {
        guard let last = layers.max() else { return [:] }
        return withoutGradients { model.forward(tokens, cache: cache, collect: layers, upTo: last).hidden }
    }
}
