import CKernels

/// Vectorised elementary functions for the row kernels (softmax, log-sum-exp, sigmoid).
///
/// `exp` writes x = n·ln2 + y with integer n and |y| <= ln2/2, evaluates e^y with a degree-6
/// polynomial and scales by 2^n through the exponent bits; relative error is below 1e-6 over
/// the float range (tested), and -inf maps to 0. The loops over rows run the same polynomial in
/// CKernels (vectormath.c), eight lanes per AVX2 instruction.
enum FastMath {
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let log2e: Float = 1.4426950408889634
        var clamped = x  // (mask blends: pointwiseMin/Max are not specialised and go lane by lane)
        clamped.replace(with: 88, where: x .> 88)
        clamped.replace(with: -87, where: x .< -87)
        // Round to the nearest integer with the 1.5·2^23 trick: plain vector adds, where
        // `rounded()` and Int32 conversions would go lane by lane.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = clamped * log2e + magic
        let n = shifted - magic
        let nBits = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        // y = x - n·ln2 in two steps (Cody–Waite) so the reduction stays exact; |y| <= 0.35
        let y = (clamped - n * 0.693359375) - n * -2.12194440e-4
        var p = SIMD8<Float>(repeating: 1.0 / 720)
        p = p * y + 1.0 / 120
        p = p * y + 1.0 / 24
        p = p * y + 1.0 / 6
        p = p * y + 0.5
        p = p * y + 1
        p = p * y + 1
        let scale = unsafeBitCast((nBits &+ 127) &<< 23, to: SIMD8<Float>.self)
        var result = p * scale
        // Below the clamp the true value underflows: return exact zeros (masked logits).
        result.replace(with: 0, where: x .< -87.0)
        return result
    }

    @inline(__always)
    static func exp(_ x: Float) -> Float {
        exp(SIMD8(repeating: x))[0]
    }

    /// row[j] = exp(row[j] - shift) for j < n; returns the sum (the C kernel, eight lanes with AVX2).
    @inline(__always)
    static func expShifted(_ row: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
        ck_exp_shifted(row, Int64(n), shift)
    }

    /// sum_j exp(row[j] - shift) without writing.
    @inline(__always)
    static func sumExpShifted(_ row: UnsafePointer<Float>, _ n: Int, shift: Float) -> Float {
        ck_sum_exp_shifted(row, Int64(n), shift)
    }

    /// dst[i] = 1 / (1 + exp(-src[i])) for i < n.
    @inline(__always)
    static func sigmoid(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        ck_sigmoid(src, dst, Int64(n))
    }
}
