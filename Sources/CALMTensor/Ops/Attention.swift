import CKernels
import Foundation

/// Geometry of one multi-head attention call over row-major buffers.
///
/// Queries are `(B, T, H, D)`, keys and values `(B, S, Hkv, D)` where the S rows of one batch
/// entry may sit inside a larger buffer (a KV cache): `kvBatchStride` is the distance between
/// batch entries. Heads are read in place through row strides. Grouped-query attention: query
/// head h reads key/value head h / (H / Hkv).
public struct AttentionShape: Sendable {
    public var batch: Int, queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int
    /// Absolute position of query 0; key s has position s. Causal: query t sees keys <= offset + t.
    public var queryOffset: Int
    public var causal: Bool
    /// Sliding-window attention (Mistral): query at position p sees keys in (p − window, p].
    public var window: Int?
    public var scale: Float
    public var kvBatchStride: Int
    /// Run the plain C kernels even on an AVX2 CPU (tests compare both paths).
    public var portable = false

    public init(batch: Int, queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int,
                queryOffset: Int = 0, causal: Bool = true, window: Int? = nil, scale: Float? = nil,
                kvBatchStride: Int? = nil) {
        precondition(heads % kvHeads == 0, "attention: \(heads) heads not divisible by \(kvHeads) kv heads")
        self.batch = batch; self.queries = queries; self.keys = keys
        self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
        self.queryOffset = queryOffset; self.causal = causal; self.window = window
        self.scale = scale ?? 1 / Float(headDim).squareRoot()
        self.kvBatchStride = kvBatchStride ?? keys * kvHeads * headDim
    }
}

/// Attention kernels on raw buffers, shared by the autodiff op and cached decoding: one task
/// per (batch row, head) on the CKernels pool, with as many threads as BLAS uses.
public enum AttentionKernel {
    /// out (B, T, H, D) = softmax(scale · Q Kᵀ + mask) V. When `probabilities` is given it
    /// receives P as (B, H, T, S) for the backward pass; otherwise only a block of rows per
    /// task exists at a time. `keyMask` (B·S, true = may attend) hides padding keys.
    public static func forward(
        _ s: AttentionShape, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        keyMask: [Bool]? = nil, out: UnsafeMutablePointer<Float>,
        probabilities: UnsafeMutablePointer<Float>? = nil
    ) {
        var shape = s.kernelShape
        if let keyMask {
            let bytes = keyMask.map { UInt8($0 ? 1 : 0) }
            bytes.withUnsafeBufferPointer { m in
                ck_attention_forward(&shape, q, k, v, m.baseAddress, out, probabilities, Int32(BLAS.threads))
            }
        } else {
            ck_attention_forward(&shape, q, k, v, nil, out, probabilities, Int32(BLAS.threads))
        }
    }

    /// Accumulates dQ, dK, dV (each optional) from dO and the saved probabilities.
    static func backward(
        _ s: AttentionShape, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        probabilities: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
        gradQ: UnsafeMutablePointer<Float>?, gradK: UnsafeMutablePointer<Float>?,
        gradV: UnsafeMutablePointer<Float>?
    ) {
        var shape = s.kernelShape
        ck_attention_backward(&shape, q, k, v, probabilities, gradOut, gradQ, gradK, gradV, Int32(BLAS.threads))
    }
}

extension AttentionShape {
    var kernelShape: ck_attention_shape {
        ck_attention_shape(batch: Int64(batch), queries: Int64(queries), keys: Int64(keys), heads: Int64(heads),
                           kv_heads: Int64(kvHeads), head_dim: Int64(headDim), query_offset: Int64(queryOffset),
                           window: Int64(window ?? 0), kv_batch_stride: Int64(kvBatchStride), causal: causal ? 1 : 0,
                           portable: portable ? 1 : 0, scale: scale)
    }
}

extension Tensor {
    /// Multi-head scaled dot-product attention.
    ///
    /// - `query (B, T, H, D)`, `key` and `value (B, S, Hkv, D)`; returns `(B, T, H, D)`.
    /// - `causal`: query t (absolute position `queryOffset + t`) sees keys at positions
    ///   `<= queryOffset + t` only. `keyMask (B·S)`: false hides a key (padding).
    /// - `window`: with causal attention, query t also ignores keys at positions
    ///   `<= queryOffset + t − window` (sliding-window attention).
    /// - `scale` defaults to `1 / sqrt(D)`.
    public static func attention(
        query: Tensor, key: Tensor, value: Tensor, causal: Bool = true, queryOffset: Int = 0,
        keyMask: [Bool]? = nil, window: Int? = nil, scale: Float? = nil
    ) -> Tensor {
        precondition(query.rank == 4 && key.rank == 4 && value.shape == key.shape,
                     "attention: query \(query.shape), key \(key.shape), value \(value.shape)")
        precondition(query.shape[0] == key.shape[0] && query.shape[3] == key.shape[3],
                     "attention: query \(query.shape) and key \(key.shape) disagree")
        let shape = AttentionShape(batch: query.shape[0], queries: query.shape[1], keys: key.shape[1],
                                   heads: query.shape[2], kvHeads: key.shape[2], headDim: query.shape[3],
                                   queryOffset: queryOffset, causal: causal, window: window, scale: scale)
        if let keyMask { precondition(keyMask.count == shape.batch * shape.keys, "attention: key mask size") }
        let needsGraph = GradientMode.isEnabled && (query.requiresGrad || key.requiresGrad || value.requiresGrad)
        // The kernel writes every element of both (zeros where no key is visible).
        let probabilityCount = needsGraph ? shape.batch * shape.heads * shape.queries * shape.keys : 0
        var probs = [Float].uninitialized(count: probabilityCount) { _ in }
        let out = [Float].uninitialized(count: query.count) { o in
            query.data.withUnsafeBufferPointer { qp in
                key.data.withUnsafeBufferPointer { kp in
                    value.data.withUnsafeBufferPointer { vp in
                        probs.withUnsafeMutableBufferPointer { pp in
                            AttentionKernel.forward(shape, q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!,
                                                    keyMask: keyMask, out: o.baseAddress!,
                                                    probabilities: needsGraph ? pp.baseAddress! : nil)
                        }
                    }
                }
            }
        }
        return .result(shape: query.shape, data: out, inputs: [query, key, value], family: .attention) { out in
            func run(_ dq: UnsafeMutablePointer<Float>?, _ dk: UnsafeMutablePointer<Float>?, _ dv: UnsafeMutablePointer<Float>?) {
                query.data.withUnsafeBufferPointer { qp in
                    key.data.withUnsafeBufferPointer { kp in
                        value.data.withUnsafeBufferPointer { vp in
                            probs.withUnsafeBufferPointer { pp in
                                out.grad!.withUnsafeBufferPointer { g in
                                    AttentionKernel.backward(
                                        shape, q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!,
                                        probabilities: pp.baseAddress!, gradOut: g.baseAddress!, gradQ: dq, gradK: dk, gradV: dv)
                                }
                            }
                        }
                    }
                }
            }
            func withGrad(_ t: Tensor, _ body: (UnsafeMutablePointer<Float>?) -> Void) {
                if t.requiresGrad { t.withGradBuffer { body($0.baseAddress!) } } else { body(nil) }
            }
            if query !== key && query !== value && key !== value {
                // The kernel adds straight into the three gradient buffers.
                withGrad(query) { dq in withGrad(key) { dk in withGrad(value) { dv in run(dq, dk, dv) } } }
                return
            }
            // One tensor in two roles (self-attention on a shared buffer): separate sums first.
            func buffer(_ t: Tensor) -> [Float]? { t.requiresGrad ? [Float](repeating: 0, count: t.count) : nil }
            var gq = buffer(query), gk = buffer(key), gv = buffer(value)
            func withOptional(_ a: inout [Float]?, _ body: (UnsafeMutablePointer<Float>?) -> Void) {
                if a == nil { body(nil) } else { a!.withUnsafeMutableBufferPointer { body($0.baseAddress!) } }
            }
            withOptional(&gq) { dq in withOptional(&gk) { dk in withOptional(&gv) { dv in run(dq, dk, dv) } } }
            for (t, g) in [(query, gq), (key, gk), (value, gv)] {
                if let g { t.accumulateGrad(g) }
            }
        }
    }
}
