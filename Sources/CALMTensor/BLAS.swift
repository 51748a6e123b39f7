import COpenBLAS

/// Thin, typed wrappers over OpenBLAS.
public enum BLAS {
    /// Sets how many threads OpenBLAS uses for every later call.
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

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
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// y (m) = alpha · A (m, n) · x (n) + beta · y, A row-major with row stride `lda`.
    @inline(__always)
    public static func gemv(m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
        guard m > 0, n > 0 else { return }
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
    }
}
