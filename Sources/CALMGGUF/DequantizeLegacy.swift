/// The 32-element block formats. Each function reads one block at `x` and writes its 32
/// values at `y`; the first half of a block's values sits in the low nibbles, the second half
/// in the high nibbles (ggml's layout, not interleaved).
enum LegacyQuants {
    /// Q4_0, 18 bytes: f16 scale d, 16 bytes of nibbles; value = (q - 8) · d.
    static func q4_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = x.loadHalf()
        for j in 0..<16 {
            let q = x.byte(2 + j)
            y[j] = Float(Int(q & 0x0F) - 8) * d
            y[j + 16] = Float(Int(q >> 4) - 8) * d
        }
    }

    /// Q4_1, 20 bytes: f16 scale d and minimum m, 16 bytes of nibbles; value = q · d + m.
    static func q4_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = x.loadHalf(), m = x.loadHalf(at: 2)
        for j in 0..<16 {
            let q = x.byte(4 + j)
            y[j] = Float(q & 0x0F) * d + m
            y[j + 16] = Float(q >> 4) * d + m
        }
    }

    /// The fifth bits of a Q5 block: bit j of `qh` belongs to value j (j < 32).
    @inline(__always) private static func highBits(_ qh: UInt32, _ j: Int) -> (UInt8, UInt8) {
        (UInt8(truncatingIfNeeded: (qh >> j) << 4) & 0x10, UInt8(truncatingIfNeeded: qh >> (j + 12)) & 0x10)
    }

    /// Q5_0, 22 bytes: f16 scale d, 32 high bits, 16 bytes of low nibbles; value = (q - 16) · d.
    static func q5_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = x.loadHalf()
        let qh = x.loadLittleEndian(UInt32.self, at: 2)
        for j in 0..<16 {
            let q = x.byte(6 + j)
            let (h0, h1) = highBits(qh, j)
            y[j] = Float(Int((q & 0x0F) | h0) - 16) * d
            y[j + 16] = Float(Int((q >> 4) | h1) - 16) * d
        }
    }

    /// Q5_1, 24 bytes: f16 scale d and minimum m, 32 high bits, 16 bytes of low nibbles;
    /// value = q · d + m.
    static func q5_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = x.loadHalf(), m = x.loadHalf(at: 2)
        let qh = x.loadLittleEndian(UInt32.self, at: 4)
        for j in 0..<16 {
            let q = x.byte(8 + j)
            let (h0, h1) = highBits(qh, j)
            y[j] = Float((q & 0x0F) | h0) * d + m
            y[j + 16] = Float((q >> 4) | h1) * d + m
        }
    }

    /// Q8_0, 34 bytes: f16 scale d, 32 signed bytes; value = q · d.
    static func q8_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = x.loadHalf()
        for j in 0..<32 { y[j] = Float(Int8(bitPattern: x.byte(2 + j))) * d }
    }
}
