/// Widens ggml tensor data to float32, value for value as ggml's reference
/// `dequantize_row_*` functions do (same operations in the same order, no fused
/// multiply-adds), so the result equals gguf-py's and transformers' dequantization exactly.
public enum Dequantize {
    /// `count` elements of type `type` stored in `raw`; nil when the type cannot be
    /// dequantized or `raw` does not hold exactly `count` elements of it.
    public static func floats(_ type: GGMLType, from raw: UnsafeRawBufferPointer, count: Int) -> [Float]? {
        let (blockSize, blockBytes) = type.layout
        guard type.isDequantizable, count >= 0, count % blockSize == 0, raw.count == count / blockSize * blockBytes else {
            return nil
        }
        guard count > 0, let base = raw.baseAddress else { return [] }
        let blocks = count / blockSize
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            guard let y = out.baseAddress else { return }
            for b in 0..<blocks {
                let x = base + b * blockBytes
                let o = y + b * blockSize
                switch type {
                case .f32: o.pointee = Float(bitPattern: x.loadLittleEndian(UInt32.self))
                case .f16: o.pointee = x.loadHalf()
                case .bf16: o.pointee = Float(bitPattern: UInt32(x.loadLittleEndian(UInt16.self)) << 16)
                case .q4_0: LegacyQuants.q4_0(x, o)
                case .q4_1: LegacyQuants.q4_1(x, o)
                case .q5_0: LegacyQuants.q5_0(x, o)
                case .q5_1: LegacyQuants.q5_1(x, o)
                case .q8_0: LegacyQuants.q8_0(x, o)
                case .q2_K: KQuants.q2_K(x, o)
                case .q3_K: KQuants.q3_K(x, o)
                case .q4_K: KQuants.q4_K(x, o)
                case .q5_K: KQuants.q5_K(x, o)
                case .q6_K: KQuants.q6_K(x, o)
                default: o.update(repeating: .nan, count: blockSize)  // unreachable: isDequantizable checked above
                }
            }
            initialized = count
        }
    }
}

extension UnsafeRawPointer {
    @inline(__always) func loadLittleEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int = 0) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// An IEEE half at `offset`, widened exactly (ggml's GGML_FP16_TO_FP32).
    @inline(__always) func loadHalf(at offset: Int = 0) -> Float {
        Float(Float16(bitPattern: loadLittleEndian(UInt16.self, at: offset)))
    }

    @inline(__always) func byte(_ offset: Int) -> UInt8 { load(fromByteOffset: offset, as: UInt8.self) }
}
