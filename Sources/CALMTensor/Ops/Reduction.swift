extension Tensor {
    /// Sum of all elements, as a scalar.
    public func sum() -> Tensor {
        let a = self
        var total: Float = 0
        for v in a.data { total += v }
        return .result(shape: [], data: [total], inputs: [a], family: .elementwise) { out in
            let g = out.grad![0]
            a.withGradBuffer { ga in for i in 0..<ga.count { ga[i] += g } }
        }
    }

    /// Mean of all elements, as a scalar.
    public func mean() -> Tensor {
        sum().scaled(by: 1 / Float(Swift.max(count, 1)))
    }

    /// Sum over the last dimension: `(..., n) -> (..., 1)`.
    public func sumLastDim() -> Tensor {
        let a = self
        let n = a.lastDim, rows = a.rowCount
        var out = [Float](repeating: 0, count: rows)
        a.data.withUnsafeBufferPointer { x in
            for r in 0..<rows {
                var s: Float = 0
                for j in 0..<n { s += x[r * n + j] }
                out[r] = s
            }
        }
        var shape = a.shape
        if shape.isEmpty { shape = [1] } else { shape[shape.count - 1] = 1 }
        return .result(shape: shape, data: out, inputs: [a], family: .elementwise) { out in
            let g = out.grad!
            a.withGradBuffer { ga in
                for r in 0..<rows { for j in 0..<n { ga[r * n + j] += g[r] } }
            }
        }
    }
}
