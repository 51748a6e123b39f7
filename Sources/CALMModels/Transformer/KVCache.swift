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
    public internal(set) var keys: [[Float]]
    public internal(set) var values: [[Float]]

    public init(layers: Int, batch: Int, capacity: Int, kvHeads: Int, headDim: Int) {
        self.batch = batch
        self.capacity = capacity
        self.kvHeads = kvHeads
        self.headDim = headDim
        let size = batch * capacity * kvHeads * headDim
        keys = Array(repeating: [Float](repeating: 0, count: size), count: layers)
        values = keys
    }

    public var rowSize: Int { kvHeads * headDim }
    public var batchStride: Int { capacity * rowSize }

    /// Copies `(B, T, Hkv, D)` keys and values for `layer` into rows `length ..< length + T`.
    public func store(layer: Int, keys newKeys: Tensor, values newValues: Tensor) {
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
    public func advance(by count: Int) { length += count }

    /// Causal attention of `query (B, T, H, D)` (positions `length ..< length + T`) over the
    /// cached keys and values of `layer`, including the T rows just stored. Inference only.
    public func attention(query q: Tensor, layer: Int, scale: Float?, window: Int? = nil) -> Tensor {
        let (b, t, heads) = (q.shape[0], q.shape[1], q.shape[2])
        precondition(length + t <= capacity, "KV cache overflow: \(length + t) positions, capacity \(capacity)")
        let shape = AttentionShape(batch: b, queries: t, keys: length + t, heads: heads, kvHeads: kvHeads,
                                   headDim: headDim, queryOffset: length, causal: true, window: window, scale: scale,
                                   kvBatchStride: batchStride)
        var out = [Float](repeating: 0, count: q.count)
        q.data.withUnsafeBufferPointer { qp in
            keys[layer].withUnsafeBufferPointer { kp in
                values[layer].withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer { o in
                        AttentionKernel.forward(shape, q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!,
                                                out: o.baseAddress!)
                    }
                }
            }
        }
        return Tensor(shape: q.shape, data: out)
    }

    /// Forgets everything (the buffers are reused).
    public func reset() { length = 0 }
}
