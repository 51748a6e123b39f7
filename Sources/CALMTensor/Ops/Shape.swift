extension Tensor {
    /// Same elements, new shape (no copy: the array is shared copy-on-write).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        let a = self
        precondition(newShape.reduce(1, *) == a.count, "reshape: \(a.shape) cannot become \(newShape)")
        return .result(shape: newShape, data: a.data, inputs: [a], family: .shape) { out in
            a.accumulateGrad(out.grad!)
        }
    }

    /// Splits a dimension into `outer * inner` with `axis` and the rest of the shape around it.
    /// Shared geometry of `concatenated` and `sliced`.
    private static func blocks(_ shape: [Int], axis: Int) -> (outer: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[(axis + 1)...].reduce(1, *))
    }

    /// Concatenates tensors along `axis`; all other dimensions must agree.
    public static func concatenate(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concatenate: no tensors")
        let first = parts[0]
        precondition(axis >= 0 && axis < first.rank, "concatenate: axis \(axis) for rank \(first.rank)")
        for p in parts {
            var a = p.shape, b = first.shape
            precondition(a.count == b.count, "concatenate: ranks differ")
            a[axis] = 0; b[axis] = 0
            precondition(a == b, "concatenate: shapes \(p.shape) and \(first.shape) differ off axis \(axis)")
        }
        let (outer, inner) = blocks(first.shape, axis: axis)
        let sizes = parts.map { $0.shape[axis] }
        let total = sizes.reduce(0, +)
        var out = [Float](repeating: 0, count: outer * total * inner)
        var offset = 0
        for (p, size) in zip(parts, sizes) {
            let chunk = size * inner
            p.data.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for o in 0..<outer {
                        (dst.baseAddress! + o * total * inner + offset * inner)
                            .update(from: src.baseAddress! + o * chunk, count: chunk)
                    }
                }
            }
            offset += size
        }
        var shape = first.shape
        shape[axis] = total
        return .result(shape: shape, data: out, inputs: parts, family: .shape) { out in
            let g = out.grad!
            var offset = 0
            for (p, size) in zip(parts, sizes) {
                defer { offset += size }
                guard p.requiresGrad else { continue }
                let chunk = size * inner
                p.withGradBuffer { gp in
                    for o in 0..<outer {
                        for j in 0..<chunk { gp[o * chunk + j] += g[o * total * inner + offset * inner + j] }
                    }
                }
            }
        }
    }

    /// Elements `range` of dimension `axis`.
    public func sliced(axis: Int, _ range: Range<Int>) -> Tensor {
        let a = self
        precondition(axis >= 0 && axis < a.rank, "slice: axis \(axis) for rank \(a.rank)")
        precondition(range.lowerBound >= 0 && range.upperBound <= a.shape[axis],
                     "slice: \(range) outside dimension \(axis) of \(a.shape)")
        let (outer, inner) = Tensor.blocks(a.shape, axis: axis)
        let full = a.shape[axis] * inner, chunk = range.count * inner, start = range.lowerBound * inner
        var out = [Float](repeating: 0, count: outer * chunk)
        a.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for o in 0..<outer {
                    (dst.baseAddress! + o * chunk).update(from: src.baseAddress! + o * full + start, count: chunk)
                }
            }
        }
        var shape = a.shape
        shape[axis] = range.count
        return .result(shape: shape, data: out, inputs: [a], family: .shape) { out in
            let g = out.grad!
            a.withGradBuffer { ga in
                for o in 0..<outer { for j in 0..<chunk { ga[o * full + start + j] += g[o * chunk + j] } }
            }
        }
    }

    /// Swaps the last two dimensions.
    public func transposedLastTwo() -> Tensor {
        let a = self
        precondition(a.rank >= 2, "transpose: rank \(a.rank)")
        let (r, c) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let batch = a.count / Swift.max(r * c, 1)
        func transpose(_ src: [Float], rows: Int, cols: Int) -> [Float] {
            var dst = [Float](repeating: 0, count: src.count)
            for bi in 0..<batch {
                let base = bi * rows * cols
                for i in 0..<rows { for j in 0..<cols { dst[base + j * rows + i] = src[base + i * cols + j] } }
            }
            return dst
        }
        var shape = a.shape
        shape.swapAt(a.rank - 2, a.rank - 1)
        return .result(shape: shape, data: transpose(a.data, rows: r, cols: c), inputs: [a], family: .shape) { out in
            a.accumulateGrad(transpose(out.grad!, rows: c, cols: r))
        }
    }
}
