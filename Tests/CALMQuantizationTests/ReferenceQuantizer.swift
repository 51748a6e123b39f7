import CALMTensor

/// ggml's reference rounding, restated from its definition (quantize_row_*_ref and
/// ggml_compute_fp32_to_bf16) one value at a time, independently of the C kernels.
enum Reference {
    static func half(_ x: Float) -> [UInt8] {
        let bits = Float16(x).bitPattern  // IEEE round to nearest even
        return [UInt8(bits & 0xFF), UInt8(bits >> 8)]
    }

    static func float(half bytes: ArraySlice<UInt8>) -> Float {
        Float(Float16(bitPattern: UInt16(bytes[bytes.startIndex]) | UInt16(bytes[bytes.startIndex + 1]) << 8))
    }

    static func quantize(_ x: [Float], format: QuantizationFormat) -> [UInt8] {
        if format == .bf16 { return x.flatMap(bf16) }
        return stride(from: 0, to: x.count, by: 32).flatMap { start -> [UInt8] in
            let block = Array(x[start..<(start + 32)])
            switch format {
            case .q8_0: return q8_0(block)
            case .q4_0: return q4_0(block)
            case .q4_1: return q4_1(block)
            case .bf16: return []
            }
        }
    }

    /// d = max|x| / 127; q = x · (1/d) rounded half away from zero.
    static func q8_0(_ block: [Float]) -> [UInt8] {
        var amax: Float = 0
        for v in block where abs(v) > amax { amax = abs(v) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        return half(d) + block.map { UInt8(bitPattern: Int8(($0 * id).rounded(.toNearestOrAwayFromZero))) }
    }

    /// The first value of largest magnitude becomes -8: d = max / -8; q = min(15, trunc(x/d + 8.5)).
    static func q4_0(_ block: [Float]) -> [UInt8] {
        var amax: Float = 0, max: Float = 0
        for v in block where amax < abs(v) {
            amax = abs(v)
            max = v
        }
        let d = max / -8
        let id: Float = d != 0 ? 1 / d : 0
        let q = block.map { v -> UInt8 in
            let scaled = v * id
            return UInt8(min(15, Int8(scaled + 8.5)))
        }
        return half(d) + (0..<16).map { q[$0] | q[$0 + 16] << 4 }
    }

    /// d = (max - min) / 15, m = min; q = min(15, trunc((x - min)/d + 0.5)).
    static func q4_1(_ block: [Float]) -> [UInt8] {
        let lo = block.min()!, hi = block.max()!
        let d = (hi - lo) / 15
        let id: Float = d != 0 ? 1 / d : 0
        let q = block.map { v -> UInt8 in
            let scaled = (v - lo) * id
            return UInt8(min(15, Int8(scaled + 0.5)))
        }
        return half(d) + half(lo) + (0..<16).map { q[$0] | q[$0 + 16] << 4 }
    }

    /// Round to nearest even on the upper 16 bits (NaN made quiet).
    static func bf16(_ x: Float) -> [UInt8] {
        let u = x.bitPattern
        let h: UInt16 = (u & 0x7FFF_FFFF) > 0x7F80_0000
            ? UInt16(truncatingIfNeeded: (u >> 16) | 64)
            : UInt16(truncatingIfNeeded: (UInt64(u) + UInt64(0x7FFF + ((u >> 16) & 1))) >> 16)
        return [UInt8(h & 0xFF), UInt8(h >> 8)]
    }

    /// Values of the blocks: q·d, (q − 8)·d, q·d + m (product, then sum), bf16 << 16.
    static func dequantize(_ bytes: [UInt8], count: Int, format: QuantizationFormat) -> [Float] {
        if format == .bf16 {
            return (0..<count).map { Float(bitPattern: (UInt32(bytes[2 * $0]) | UInt32(bytes[2 * $0 + 1]) << 8) << 16) }
        }
        var out: [Float] = []
        for b in 0..<(count / 32) {
            let block = bytes[(b * format.bytesPerBlock)..<((b + 1) * format.bytesPerBlock)]
            let s = block.startIndex
            let d = float(half: block[s..<(s + 2)])
            switch format {
            case .q8_0:
                out += (0..<32).map { Float(Int8(bitPattern: block[s + 2 + $0])) * d }
            case .q4_0:
                let q = (0..<32).map { j in Int(j < 16 ? block[s + 2 + j] & 0x0F : block[s + 2 + j - 16] >> 4) }
                out += q.map { Float($0 - 8) * d }
            case .q4_1:
                let m = float(half: block[(s + 2)..<(s + 4)])
                let q = (0..<32).map { j in Int(j < 16 ? block[s + 4 + j] & 0x0F : block[s + 4 + j - 16] >> 4) }
                out += q.map { v -> Float in
                    let product = Float(v) * d
                    return product + m
                }
            case .bf16: break
            }
        }
        return out
    }
}

/// Test data: normal values at several scales per row, plus blocks that hit the rounding rules.
func sampleMatrix(rows: Int, cols: Int, seed: UInt64) -> [Float] {
    var g = SeededGenerator(seed: seed)
    var values = (0..<(rows * cols)).map { i -> Float in
        let scale: Float = [0.02, 0.1, 1, 1e-5][(i / cols) % 4]
        return g.nextNormal() * scale
    }
    if cols >= 32 && rows >= 2 {
        // Row 1 starts with exact ties for q8_0 (amax 127 gives d = 1).
        let ties: [Float] = [127, 2.5, -3.5, 0.5, -0.5, 1.5, -1.5, 126.5]
        for j in 0..<32 { values[cols + j] = ties[j % 8] }
    }
    if cols >= 64 {
        for j in 32..<64 { values[j] = 0 }  // an all-zero block
    }
    return values
}

/// max |a − b| / max |b|: the error relative to the size of the reference result.
func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    let scale = b.map(abs).max() ?? 0
    let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
    return scale == 0 ? diff : diff / scale
}
