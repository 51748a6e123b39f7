import COpenBLAS

/// Thin, typed wrappers over OpenBLAS.
///
/// OpenBLAS itself runs single-threaded: a product large enough to split is cut into one slice
/// of rows (or columns) per thread on the CKernels pool, the same threads that run attention and
/// the element-wise loops. With OpenBLAS's own threads as well, three spinning threads would
/// share two cores during training and take turns at random (measured: steps 20% slower in
/// about a third of the runs).
public enum BLAS {
    nonisolated(unsafe) private static var configured: Int = {
        let count = Int(openblas_get_num_threads())  // OPENBLAS_NUM_THREADS or all cores
        openblas_set_num_threads(1)
        return max(1, count)
    }()

    /// Sets how many threads every later product and split loop uses.
    public static func setThreads(_ count: Int) {
        configured = max(1, count)
        openblas_set_num_threads(1)
    }

    public static var threads: Int { configured }

    /// Products below this many multiply-adds run on the calling thread (a split costs more).
    static let splitThreshold = 1 << 18

    /// C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C, all row-major.
    /// `lda`, `ldb`, `ldc` are row strides of A, B and C as stored.
    @inline(__always)
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched for k == 0 only when beta == 1; make it explicit.
            if beta != 1 {
                for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : c[i * ldc + j] * beta } }
            }
            return
        }
        func product(_ m: Int, _ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
        let splitRows = m >= n, size = max(m, n)
        let parts = m * n * k < splitThreshold ? 1 : min(threads, size / 16)
        guard parts > 1 else { return product(m, n, a, b, c) }
        // One slice of C per thread: rows of A and C, or columns of B and C.
        Parallel.forRanges(parts, grain: 1) { range in
            for part in range {
                let lo = size * part / parts, hi = size * (part + 1) / parts
                if splitRows {
                    product(hi - lo, n, a + (transA ? lo : lo * lda), b, c + lo * ldc)
                } else {
                    product(m, hi - lo, a, b + (transB ? lo * ldb : lo), c + lo)
                }
            }
        }
    }

    /// y (m) = alpha · A (m, n) · x (n) + beta · y, A row-major with row stride `lda`.
    @inline(__always)
    public static func gemv(m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
        guard m > 0, n > 0 else { return }
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
    }
}
