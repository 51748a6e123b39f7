/// A weight as a model holds it: a float32 tensor (trainable or frozen) or a frozen quantized
/// matrix. Layers multiply by either through `Tensor.linear`.
public enum WeightMatrix {
    case dense(Tensor)
    case quantized(QuantizedMatrix)

    public var shape: [Int] {
        switch self {
        case .dense(let t): return t.shape
        case .quantized(let q): return q.shape
        }
    }

    /// Logical number of values.
    public var count: Int { shape.reduce(1, *) }

    /// Bytes held in memory.
    public var byteCount: Int {
        switch self {
        case .dense(let t): return t.count * MemoryLayout<Float>.size
        case .quantized(let q): return q.byteCount
        }
    }

    /// The float32 tensor, or nil when quantized.
    public var dense: Tensor? {
        if case .dense(let t) = self { return t }
        return nil
    }

    public var quantized: QuantizedMatrix? {
        if case .quantized(let q) = self { return q }
        return nil
    }

    /// Float32 values: the tensor itself when dense, else a dequantized copy (export, tests).
    public func floatTensor() -> Tensor {
        switch self {
        case .dense(let t): return t
        case .quantized(let q): return q.dequantized()
        }
    }
}

/// Every weight of a model with its checkpoint name, in a stable order, quantized or not.
public typealias NamedWeights = [(name: String, weight: WeightMatrix)]

extension Tensor {
    /// `linear` with whichever kind of weight a layer holds.
    public func linear(_ weight: WeightMatrix, bias: Tensor? = nil, residual: Tensor? = nil) -> Tensor {
        switch weight {
        case .dense(let w): return linear(w, bias: bias, residual: residual)
        case .quantized(let q): return linear(q, bias: bias, residual: residual)
        }
    }
}

extension Tensor {
    /// Rows of `table (V, C)` for `ids`, shaped `idShape + [C]`, whichever kind the table is. A
    /// quantized table dequantizes just the requested rows and, being frozen, records no graph.
    public static func embedding(_ table: WeightMatrix, ids: [Int], shape idShape: [Int]) -> Tensor {
        switch table {
        case .dense(let t): return embedding(t, ids: ids, shape: idShape)
        case .quantized(let q):
            precondition(idShape.reduce(1, *) == ids.count, "embedding: \(ids.count) ids for shape \(idShape)")
            let c = q.cols
            let out = [Float].uninitialized(count: ids.count * c) { o in
                for (r, i) in ids.enumerated() {
                    precondition(i >= 0 && i < q.rows, "embedding: row \(i) outside \(q.rows)")
                    q.dequantizeRows(i..<(i + 1), into: o.baseAddress! + r * c)
                }
            }
            return Tensor(shape: idShape + [c], data: out)
        }
    }
}
