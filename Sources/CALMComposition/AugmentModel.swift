import CALMModels
import CALMTensor

/// What a composition needs from a frozen expert (augment) model.
///
/// The foundation's `TransformerLM` conforms; a new architecture conforms to this protocol and
/// registers a loader with `ArchitectureRegistry`, and composition code stays unchanged.
public protocol AugmentModel: AnyObject {
    /// Number of blocks whose outputs can be connected.
    var layerCount: Int { get }
    /// Width of block `layer`'s output.
    func outputWidth(ofLayer layer: Int) -> Int
    /// The longest sequence the model can hold.
    var maxContext: Int { get }
    /// Every weight with its checkpoint name (for content hashes and freezing).
    var parameters: NamedParameters { get }
    /// The model's configuration as canonical JSON (part of its content hash).
    var configurationJSON: String { get }
    /// Outputs of the given blocks for a whole batch, `(B, T, width)` each, without gradients.
    func hiddenStates(_ tokens: TokenBatch, layers: Set<Int>) -> [Int: Tensor]
    /// Multiply-add FLOPs (×2) per token of running blocks `0...layer` with attention over `span` keys.
    func forwardFLOPsPerToken(throughLayer layer: Int, span: Int) -> Double
    /// Bytes of a decoding cache holding `capacity` positions.
    func decodingCacheBytes(capacity: Int) -> Int
    /// A fresh cache for incremental use.
    func makeDecodingCache(capacity: Int) -> AnyObject
    /// Outputs of the given blocks for `tokens` appended after everything the cache holds.
    func hiddenStates(_ tokens: TokenBatch, layers: Set<Int>, cache: AnyObject) -> [Int: Tensor]
}

extension AugmentModel {
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.tensor.count } }

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

    public func makeDecodingCache(capacity: Int) -> AnyObject { makeCache(batch: 1, capacity: capacity) }

    public func forwardFLOPsPerToken(throughLayer layer: Int, span: Int) -> Double {
        Double(layer + 1) * config.blockFLOPsPerToken(span: span)
    }

    public func decodingCacheBytes(capacity: Int) -> Int {
        2 * config.numLayers * capacity * config.numKVHeads * config.headDim * MemoryLayout<Float>.size
    }

    public func hiddenStates(_ tokens: TokenBatch, layers: Set<Int>, cache: AnyObject) -> [Int: Tensor] {
        guard let last = layers.max() else { return [:] }
        // The cache always comes from makeDecodingCache of this model.
        let kv = cache as! KVCache
        return withoutGradients { forward(tokens, cache: kv, collect: layers, upTo: last).hidden }
    }
}
