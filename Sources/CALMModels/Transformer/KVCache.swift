import CALMTensor

/// Per-layer key/value cache for incremental decoding.
///
/// Each layer holds keys and values as `(B, capacity, Hkv, D)`; attention reads the first
/// `length` rows of every batch entry in place (no copies per step).
public final class KVCache {
    public let batch: Int
    public let capacity: Int
    public let kvHeads: Int
    public let headDim: Int
    /// Tokens already cached (the position of the next token).
    public private(set) var length = 0
    var keys: [[Float]]
    var values: [[Float]]

    public init(layers: Int, batch: Int, capacity: Int, kvHeads: Int, headDim: Int) {
        self.batch = batch
        self.capacity = capacity
        self.kvHeads = kvHeads
        self.headDim = headDim
        let size = batch * capacity * kvHeads * headDim
        keys = Array(repeating: [Float](repeating: 0, count: size), count: layers)
        values = keys
    }

    var rowSize: Int { kvHeads * headDim }
    var batchStride: Int { capacity * rowSize }

    /// Copies `(B, T, Hkv, D)` keys and values for `layer` into rows `length ..< length + T`.
    func store(layer: Int, keys newKeys: Tensor, values newValues: Tensor) {
        let t = newKeys.shape[1]
        let chunk = t * rowSize
        keys[layer].withUnsafeMutableBufferPointer { dst in
            newKeys.data.withUnsafeBufferPointer { src in
                for b in 0..<batch {
                    (dst.baseAddress! + b * batchStride + length * rowSize).update(from: src.baseAddress! + b * chunk, count: chunk)
                }
            }
        }
        values[layer].withUnsafeMutableBufferPointer { dst in
            newValues.data.withUnsafeBufferPointer { src in
                for b in 0..<batch {
                    (dst.baseAddress! + b * batchStride + length * rowSize).update(from: src.baseAddress! + b * chunk, count: chunk)
                }
            }
        }
    }

    /// Marks `count` more positions as cached (after every layer stored them).
    func advance(by count: Int) { length += count }

    /// Forgets everything (the buffers are reused).
    public func reset() { length = 0 }
}
