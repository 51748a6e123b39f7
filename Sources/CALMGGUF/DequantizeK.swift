/// The 256-element "k-quant" super-block formats. Each function reads one super-block at `x`
/// and writes its 256 values at `y`, in ggml's order: the super-block is walked in two halves
/// of 128 values, and within a half, bit planes (2-bit types) or nibbles (4/5-bit types) of the
/// same 32 bytes give successive groups of 16 or 32 values.
enum KQuants {
    /// Q2_K, 84 bytes: 16 scale/min nibble pairs, 64 bytes of 2-bit values, f16 d and dmin.
    /// Group g of 16 values: (d · scale_g) · q - (dmin · min_g).
    static func q2_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = x.loadHalf(at: 80), dmin = x.loadHalf(at: 82)
        var out = 0, group = 0
        for half in 0..<2 {
            let q = 16 + 32 * half  // byte offset of this half's 32 bytes of values
            for shift in stride(from: 0, to: 8, by: 2) {
                for sub in 0..<2 {  // bytes 0-15, then 16-31
                    let sc = x.byte(group)
                    group += 1
                    let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
                    for l in 0..<16 {
                        y[out] = dl * Float((x.byte(q + 16 * sub + l) >> UInt8(shift)) & 3) - ml
                        out += 1
                    }
                }
            }
        }
    }

    /// Q3_K, 110 bytes: 32 bytes of high bits, 64 bytes of 2-bit low parts, 12 bytes of
    /// sixteen 6-bit scales, f16 d. Group g of 16 values: (d · (scale_g - 32)) · (q - 4 unless
    /// the value's high bit is set).
    static func q3_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = x.loadHalf(at: 108)
        // Scale j: low 4 bits from byte j (j < 8) or the high nibble of byte j - 8, high 2 bits
        // from byte 8 + j % 4 at bit 2·(j / 4).
        func scale(_ j: Int) -> Int {
            let low = j < 8 ? x.byte(96 + j) & 0x0F : x.byte(96 + j - 8) >> 4
            let high = (x.byte(96 + 8 + j % 4) >> UInt8(2 * (j / 4))) & 3
            return Int(low | (high << 4)) - 32
        }
        var out = 0, group = 0
        var mask: UInt8 = 1  // which bit of the high-bit bytes belongs to the current plane
        for half in 0..<2 {
            let q = 32 + 32 * half
            for shift in stride(from: 0, to: 8, by: 2) {
                for sub in 0..<2 {
                    let dl = d * Float(scale(group))
                    group += 1
                    for l in 0..<16 {
                        let low = Int((x.byte(q + 16 * sub + l) >> UInt8(shift)) & 3)
                        let high = x.byte(16 * sub + l) & mask != 0 ? 0 : 4
                        y[out] = dl * Float(low - high)
                        out += 1
                    }
                }
                mask <<= 1
            }
        }
    }

    /// The 6-bit scale and min of group j (0-7) from the 12 packed bytes at `s`: groups 0-3 in
    /// the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); groups 4-7 in the nibbles of bytes
    /// 8-11 plus the top 2 bits of bytes 0-3 (scales) and 4-7 (mins). ggml's get_scale_min_k4.
    @inline(__always) static func scaleMin(_ x: UnsafeRawPointer, _ s: Int, _ j: Int) -> (Float, Float) {
        if j < 4 {
            return (Float(x.byte(s + j) & 63), Float(x.byte(s + j + 4) & 63))
        }
        let sc = (x.byte(s + j + 4) & 0x0F) | ((x.byte(s + j - 4) >> 6) << 4)
        let m = (x.byte(s + j + 4) >> 4) | ((x.byte(s + j) >> 6) << 4)
        return (Float(sc), Float(m))
    }

    /// Q4_K, 144 bytes: f16 d and dmin, 12 bytes of 6-bit scales and mins, 128 bytes of
    /// nibbles. Group g of 32 values: (d · scale_g) · q - (dmin · min_g).
    static func q4_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = x.loadHalf(), dmin = x.loadHalf(at: 2)
        for chunk in 0..<4 {  // 64 values from 32 bytes: low nibbles, then high nibbles
            let q = 16 + 32 * chunk
            let (s1, m1) = scaleMin(x, 4, 2 * chunk), (s2, m2) = scaleMin(x, 4, 2 * chunk + 1)
            let d1 = d * s1, dm1 = dmin * m1, d2 = d * s2, dm2 = dmin * m2
            let o = y + 64 * chunk
            for l in 0..<32 {
                let b = x.byte(q + l)
                o[l] = d1 * Float(b & 0x0F) - dm1
                o[l + 32] = d2 * Float(b >> 4) - dm2
            }
        }
    }

    /// Q5_K, 176 bytes: as Q4_K plus 32 bytes of fifth bits (bit 2·chunk for the low-nibble
    /// values of a 64-value chunk, bit 2·chunk + 1 for the high-nibble ones).
    static func q5_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = x.loadHalf(), dmin = x.loadHalf(at: 2)
        for chunk in 0..<4 {
            let q = 48 + 32 * chunk
            let (s1, m1) = scaleMin(x, 4, 2 * chunk), (s2, m2) = scaleMin(x, 4, 2 * chunk + 1)
            let d1 = d * s1, dm1 = dmin * m1, d2 = d * s2, dm2 = dmin * m2
            let u1 = UInt8(1) << UInt8(2 * chunk), u2 = UInt8(2) << UInt8(2 * chunk)
            let o = y + 64 * chunk
            for l in 0..<32 {
                let b = x.byte(q + l), h = x.byte(16 + l)
                o[l] = d1 * Float((b & 0x0F) + (h & u1 != 0 ? 16 : 0)) - dm1
                o[l + 32] = d2 * Float((b >> 4) + (h & u2 != 0 ? 16 : 0)) - dm2
            }
        }
    }

    /// Q6_K, 210 bytes: 128 bytes of low nibbles, 64 bytes of 2-bit high parts, 16 signed
    /// 8-bit scales, f16 d. Group g of 16 values: (d · scale_g) · (q - 32).
    static func q6_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = x.loadHalf(at: 208)
        for half in 0..<2 {
            let ql = 64 * half, qh = 128 + 32 * half, sc = 192 + 8 * half
            let o = y + 128 * half
            for l in 0..<32 {
                let group = l / 16
                let lowA = x.byte(ql + l), lowB = x.byte(ql + l + 32), h = x.byte(qh + l)
                let q1 = Int((lowA & 0x0F) | ((h & 3) << 4)) - 32
                let q2 = Int((lowB & 0x0F) | (((h >> 2) & 3) << 4)) - 32
                let q3 = Int((lowA >> 4) | (((h >> 4) & 3) << 4)) - 32
                let q4 = Int((lowB >> 4) | (((h >> 6) & 3) << 4)) - 32
                func scale(_ k: Int) -> Float { Float(Int8(bitPattern: x.byte(sc + group + k))) }
                o[l] = d * scale(0) * Float(q1)
                o[l + 32] = d * scale(2) * Float(q2)
                o[l + 64] = d * scale(4) * Float(q3)
                o[l + 96] = d * scale(6) * Float(q4)
            }
        }
    }
}
