import CALMModels
import CALMTensor

/// One bridge's cross-attention keys and values over the augment positions seen so far,
/// `(1, capacity, H, hd)` each, for cached composed decoding.
final class BridgeCache {
    // A one-layer KV cache does the storage and the in-place attention.
    private let storage: KVCache

    init(capacity: Int, heads: Int, headDim: Int) {
        storage = KVCache(layers: 1, batch: 1, capacity: capacity, kvHeads: heads, headDim: headDim)
    }

    /// Augment positions held (the position of the next one).
    var length: Int { storage.length }

    /// The augment's prediction entropy `(1, T, 1)` at the newest positions (confidence gates).
    private(set) var newEntropy: Tensor?

    /// Appends keys and values `(1, T, H, hd)` of the newest augment positions, and with
    /// confidence gates the augment's prediction entropy there.
    func store(keys: Tensor, values: Tensor, entropy: Tensor?) {
        storage.store(layer: 0, keys: keys, values: values)
        newEntropy = entropy
    }

    /// Marks the stored positions as held, once the anchor has attended to them.
    func advance(by count: Int) { storage.advance(by: count) }

    /// Causal attention of anchor queries `(1, T, H, hd)` at positions `length ..< length + T`
    /// over every augment position up to the same one.
    func attention(query: Tensor) -> Tensor { storage.attention(query: query, layer: 0, scale: nil) }
}
