import Foundation

/// Geometry of one multi-head attention call over row-major buffers.
///
/// Queries are `(B, T, H, D)`, keys and values `(B, S, Hkv, D)` where the S rows of one batch
/// entry may sit inside a larger buffer (a KV cache): `kvBatchStride` is the distance between
/// batch entries. Heads are read in place through BLAS leading dimensions, so no transpose is
/// ever materialised. Grouped-query attention: query head h reads key/value head h / (H / Hkv).
public struct AttentionShape: Sendable {
    public var batch: Int, queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int
    /// Absolute position of query 0; key s has position s. Causal: query t sees keys <= offset + t.
    public var queryOffset: Int
    public var causal: Bool
    /// Sliding-window attention (Mistral): query at position p sees keys in (p − window, p].
    public var window: Int?
    public var scale: Float
    public var kvBatchStride: Int

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

    var qRow: Int { heads * headDim }
    var kvRow: Int { kvHeads * headDim }
    var group: Int { heads / kvHeads }
    /// Number of keys query t may see.
    @inline(__always) func visibleKeys(_ t: Int) -> Int {
        causal ? Swift.max(0, Swift.min(keys, queryOffset + t + 1)) : keys
    }
    /// Number of leading keys query t may not see (outside its sliding window).
    @inline(__always) func hiddenPrefix(_ t: Int) -> Int {
        guard let window else { return 0 }
        return Swift.max(0, Swift.min(keys, queryOffset + t + 1 - window))
    }
}

/// Attention kernels on raw buffers, shared by the autodiff op and cached decoding.
public enum AttentionKernel {
    /// out (B, T, H, D) = softmax(scale · Q Kᵀ + mask) V. When `probabilities` is given it
    /// receives P as (B, H, T, S) for the backward pass; otherwise a scratch row block is used.
    /// `keyMask` (B·S, true = may attend) hides padding keys.
    public static func forward(
        _ s: AttentionShape, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        keyMask: [Bool]? = nil, out: UnsafeMutablePointer<Float>,
        probabilities: UnsafeMutablePointer<Float>? = nil
    ) {
        let (T, S, D) = (s.queries, s.keys, s.headDim)
        guard T > 0 else { return }
        let scratch = probabilities == nil ? UnsafeMutablePointer<Float>.allocate(capacity: T * S) : nil
        defer { scratch?.deallocate() }
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                let kvh = h / s.group
                let qh = q + b * T * s.qRow + h * D
                let kh = k + b * s.kvBatchStride + kvh * D
                let vh = v + b * s.kvBatchStride + kvh * D
                let p = probabilities.map { $0 + (b * s.heads + h) * T * S } ?? scratch!
                // P (T, S) = scale · Q_h (T, D) · K_hᵀ (D, S)
                BLAS.gemm(transA: false, transB: true, m: T, n: S, k: D, alpha: s.scale,
                          a: qh, lda: s.qRow, b: kh, ldb: s.kvRow, c: p, ldc: S)
                for t in 0..<T {
                    let row = p + t * S
                    let visible = s.visibleKeys(t)
                    if let keyMask {
                        for j in 0..<visible where !keyMask[b * S + j] { row[j] = -.infinity }
                    }
                    for j in 0..<Swift.min(visible, s.hiddenPrefix(t)) { row[j] = -.infinity }
                    RowKernels.softmaxInPlace(row, S, visible: visible)
                }
                // O_h (T, D) = P (T, S) · V_h (S, D)
                BLAS.gemm(transA: false, transB: false, m: T, n: D, k: S,
                          a: p, lda: S, b: vh, ldb: s.kvRow, c: out + b * T * s.qRow + h * D, ldc: s.qRow)
            }
        }
    }

    /// Accumulates dQ, dK, dV (each optional) from dO and the saved probabilities.
    static func backward(
        _ s: AttentionShape, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        probabilities: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
        gradQ: UnsafeMutablePointer<Float>?, gradK: UnsafeMutablePointer<Float>?,
        gradV: UnsafeMutablePointer<Float>?
    ) {
        let (T, S, D) = (s.queries, s.keys, s.headDim)
        guard T > 0, S > 0 else { return }
        let dP = UnsafeMutablePointer<Float>.allocate(capacity: T * S)
        defer { dP.deallocate() }
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                let kvh = h / s.group
                let qOff = b * T * s.qRow + h * D
                let kvOff = b * s.kvBatchStride + kvh * D
                let p = probabilities + (b * s.heads + h) * T * S
                let dO = gradOut + qOff
                if let gradV {
                    // dV_h (S, D) += Pᵀ (S, T) · dO_h (T, D)
                    BLAS.gemm(transA: true, transB: false, m: S, n: D, k: T,
                              a: p, lda: S, b: dO, ldb: s.qRow, beta: 1, c: gradV + kvOff, ldc: s.kvRow)
                }
                guard gradQ != nil || gradK != nil else { continue }
                // dP (T, S) = dO_h (T, D) · V_hᵀ (D, S)
                BLAS.gemm(transA: false, transB: true, m: T, n: S, k: D,
                          a: dO, lda: s.qRow, b: v + kvOff, ldb: s.kvRow, c: dP, ldc: S)
                // dScores = P ⊙ (dP − Σ_j dP·P)   (masked entries have P = 0)
                for t in 0..<T {
                    let pr = p + t * S, dr = dP + t * S
                    var dot: Float = 0
                    for j in 0..<S { dot += pr[j] * dr[j] }
                    for j in 0..<S { dr[j] = pr[j] * (dr[j] - dot) }
                }
                if let gradQ {
                    // dQ_h (T, D) += scale · dScores (T, S) · K_h (S, D)
                    BLAS.gemm(transA: false, transB: false, m: T, n: D, k: S, alpha: s.scale,
                              a: dP, lda: S, b: k + kvOff, ldb: s.kvRow, beta: 1, c: gradQ + qOff, ldc: s.qRow)
                }
                if let gradK {
                    // dK_h (S, D) += scale · dScoresᵀ (S, T) · Q_h (T, D)
                    BLAS.gemm(transA: true, transB: false, m: S, n: D, k: T, alpha: s.scale,
                              a: dP, lda: S, b: q + qOff, ldb: s.qRow, beta: 1, c: gradK + kvOff, ldc: s.kvRow)
                }
            }
        }
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
        var out = [Float](repeating: 0, count: query.count)
        var probs = needsGraph ? [Float](repeating: 0, count: shape.batch * shape.heads * shape.queries * shape.keys) : []
        query.data.withUnsafeBufferPointer { qp in
            key.data.withUnsafeBufferPointer { kp in
                value.data.withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer { o in
                        probs.withUnsafeMutableBufferPointer { pp in
                            AttentionKernel.forward(shape, q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!,
                                                    keyMask: keyMask, out: o.baseAddress!,
                                                    probabilities: needsGraph ? pp.baseAddress! : nil)
                        }
                    }
                }
            }
        }
        return .result(shape: query.shape, data: out, inputs: [query, key, value]) { out in
            let gq: [Float]? = query.requiresGrad ? [Float](repeating: 0, count: query.count) : nil
            var gk: [Float]? = key.requiresGrad ? [Float](repeating: 0, count: key.count) : nil
            var gv: [Float]? = value.requiresGrad ? [Float](repeating: 0, count: value.count) : nil
            var gqBuf = gq
            func withOptional(_ a: inout [Float]?, _ body: (UnsafeMutablePointer<Float>?) -> Void) {
                if a == nil { body(nil) } else { a!.withUnsafeMutableBufferPointer { body($0.baseAddress!) } }
            }
            query.data.withUnsafeBufferPointer { qp in
                key.data.withUnsafeBufferPointer { kp in
                    value.data.withUnsafeBufferPointer { vp in
                        probs.withUnsafeBufferPointer { pp in
                            out.grad!.withUnsafeBufferPointer { g in
                                withOptional(&gqBuf) { dq in
                                    withOptional(&gk) { dk in
                                        withOptional(&gv) { dv in
                                            AttentionKernel.backward(
                                                shape, q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!,
                                                probabilities: pp.baseAddress!, gradOut: g.baseAddress!,
                                                gradQ: dq, gradK: dk, gradV: dv)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for (t, g) in [(query, gqBuf), (key, gk), (value, gv)] {
                guard let g else { continue }
                t.withGradBuffer { dst in for i in 0..<dst.count { dst[i] += g[i] } }
            }
        }
    }
}
