extension Tensor {
    /// Gathers rows of `table (V, C)` for `ids`, shaped `idShape + [C]`.
    /// Backward scatters into the table's gradient (only when the table is trainable).
    public static func embedding(_ table: Tensor, ids: [Int], shape idShape: [Int]) -> Tensor {
        precondition(table.rank == 2, "embedding: table must be (V, C), got \(table.shape)")
        precondition(idShape.reduce(1, *) == ids.count, "embedding: \(ids.count) ids for shape \(idShape)")
        let (v, c) = (table.shape[0], table.shape[1])
        var out = [Float](repeating: 0, count: ids.count * c)
        table.data.withUnsafeBufferPointer { tp in
            out.withUnsafeMutableBufferPointer { o in
                for (r, id) in ids.enumerated() {
                    precondition(id >= 0 && id < v, "embedding: id \(id) outside vocabulary of \(v)")
                    (o.baseAddress! + r * c).update(from: tp.baseAddress! + id * c, count: c)
                }
            }
        }
        return .result(shape: idShape + [c], data: out, inputs: [table]) { out in
            let g = out.grad!
            table.withGradBuffer { gt in
                for (r, id) in ids.enumerated() {
                    for j in 0..<c { gt[id * c + j] += g[r * c + j] }
                }
            }
        }
    }
}

extension Tensor {
    /// Rows `indices` of `self` viewed as `(rows, lastDim)`: `(indices.count, lastDim)`.
    /// Backward scatters into the selected rows (repeated indices accumulate).
    public func gatheringRows(_ indices: [Int]) -> Tensor {
        let x = self
        let c = x.lastDim, rows = x.rowCount
        var out = [Float](repeating: 0, count: indices.count * c)
        x.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (r, i) in indices.enumerated() {
                    precondition(i >= 0 && i < rows, "gatheringRows: row \(i) outside \(rows)")
                    (dst.baseAddress! + r * c).update(from: src.baseAddress! + i * c, count: c)
                }
            }
        }
        return .result(shape: [indices.count, c], data: out, inputs: [x]) { out in
            let g = out.grad!
            x.withGradBuffer { gx in
                for (r, i) in indices.enumerated() { for j in 0..<c { gx[i * c + j] += g[r * c + j] } }
            }
        }
    }
}
