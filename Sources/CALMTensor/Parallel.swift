import CKernels

/// Splits element-wise and per-row loops over as many threads as BLAS uses, on the CKernels
/// pool (the same spinning workers as quantized decoding, so a split costs microseconds).
enum Parallel {
    /// Calls `body` on disjoint ranges that cover `0 ..< count`, at least `grain` long each;
    /// work below two grains stays on the calling thread. Ranges run concurrently: `body` must
    /// only write through pointers to the elements of its own range.
    @inline(__always)
    static func forRanges(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let threads = BLAS.threads
        if threads <= 1 || count < 2 * grain { return body(0..<count) }
        withoutActuallyEscaping(body) { body in
            var task = body
            withUnsafeMutablePointer(to: &task) { pointer in
                ck_parallel_for(Int64(count), Int64(grain), Int32(threads), { context, begin, end in
                    context!.assumingMemoryBound(to: ((Range<Int>) -> Void).self).pointee(Int(begin)..<Int(end))
                }, pointer)
            }
        }
    }

    /// Elements per range for element-wise loops: about 20 microseconds of simple work.
    static let elementGrain = 1 << 15

    /// Rows per range for loops over rows of `width` elements.
    @inline(__always)
    static func rowGrain(width: Int) -> Int { max(1, elementGrain / max(1, width)) }
}

extension Tensor {
    /// grad += `scale` · g. A first gradient takes g's storage as it is (copy-on-write shares
    /// it; the producer drops its own gradient right after), so most accumulations cost nothing.
    func accumulateGrad(_ g: [Float], scale: Float = 1) {
        precondition(g.count == count, "gradient of \(g.count) elements for a tensor of \(count)")
        if grad == nil, scale == 1 { grad = g; return }
        withGradBuffer { dst in
            g.withUnsafeBufferPointer { src in
                let d = dst.baseAddress!, s = src.baseAddress!
                Parallel.forRanges(dst.count, grain: Parallel.elementGrain) { r in
                    if scale == 1 { for i in r { d[i] += s[i] } } else { for i in r { d[i] += scale * s[i] } }
                }
            }
        }
    }
}
