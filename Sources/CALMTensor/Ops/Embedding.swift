extension Tensor {
    /// Gathers rows of `table (V, C)` for `ids`, shaped `idShape + [C]`.
    /// Backward scatters into the table's gradient (only when the table is trainable).
    public static func embedding(_ table: Tensor, ids: [Int], shape idShape: [Int]) -> Tensor {
        precondition(table.rank == 2, "embedding: table must be (V, C), got \(table.shape)")
        precondition(idShape.reduce(1, *) == ids.count, "embedding: \(ids.count) ids for shape \(idShape)")
        return table.gatheringRows(ids, resultShape: idShape + [table.shape[1]])
    }
}

extension Tensor {
    /// Rows `indices` of `self` viewed as `(rows, lastDim)`: `(indices.count, lastDim)`.
    /// Backward scatters into the selected rows (repeated indices accumulate).
    public func gatheringRows(_ indices: [Int]) -> Tensor {
        gatheringRows(indices, resultShape: [indices.count, lastDim])
    }

    /// The same gather with the result shaped `resultShape` (shared with `embedding`).
    func gatheringRows(_ indices: [Int], resultShape: [Int]) -> Tensor {
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
        return .result(shape: resultShape, data: out, inputs: [x], family: .embedding) { out in
            let g = out.grad!
            x.withGradBuffer { gx in
                for (r, i) in indices.enumerated() { for j in 0..<c { gx[i * c + j] += g[r * c + j] } }
            }
        }
    }
}

extension Tensor {
    /// `(rows, lastDim) -> (rows, width)`: column j of `self` lands in column `columns[j]`,
    /// every other column holds `fill`. Backward reads the gradient back from those columns.
    /// (A model that stores a subset of its vocabulary reports logits over all of it.)
    public func spreadingColumns(_ columns: [Int], width: Int, fill: Float) -> Tensor {
        let x = self
        let n = x.lastDim, rows = x.rowCount
        precondition(columns.count == n, "spreadingColumns: \(columns.count) columns for \(n)")
        precondition(columns.allSatisfy { $0 >= 0 && $0 < width }, "spreadingColumns: a column outside \(width)")
        var out = [Float](repeating: fill, count: rows * width)
        x.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for r in 0..<rows { for (j, column) in columns.enumerated() { dst[r * width + column] = src[r * n + j] } }
            }
        }
        return .result(shape: Array(x.shape.dropLast()) + [width], data: out, inputs: [x], family: .embedding) { out in
            let g = out.grad!
            x.withGradBuffer { gx in
                for r in 0..<rows { for (j, column) in columns.enumerated() { gx[r * n + j] += g[r * width + column] } }
            }
        }
    }
}
