import CKernels

/// Storage formats for frozen weights, with ggml's exact block layouts (little-endian), so
/// blocks can move between GGUF files and CALM checkpoints unchanged.
public enum QuantizationFormat: String, CaseIterable, Sendable, Codable {
    /// Blocks of 32: f16 scale d, 32 int8 q; value = q·d (8.5 bits per value).
    case q8_0
    /// Blocks of 32: f16 d, 16 bytes of nibbles (byte j: value j low, value j + 16 high);
    /// value = (q − 8)·d (4.5 bits per value).
    case q4_0
    /// Blocks of 32: f16 d, f16 m, 16 bytes of nibbles; value = q·d + m (5 bits per value).
    case q4_1
    /// The upper 16 bits of each float32, rounded to nearest even.
    case bf16

    /// Values per block (a row holds a whole number of blocks).
    public var blockSize: Int { self == .bf16 ? 1 : 32 }

    public var bytesPerBlock: Int {
        switch self {
        case .q8_0: return 34
        case .q4_0: return 18
        case .q4_1: return 20
        case .bf16: return 2
        }
    }

    /// Bytes of one row of `columns` values.
    public func rowBytes(columns: Int) -> Int { columns / blockSize * bytesPerBlock }

    /// The format's number in the C kernels.
    var kernelID: Int32 {
        switch self {
        case .q8_0: return Int32(CK_Q8_0)
        case .q4_0: return Int32(CK_Q4_0)
        case .q4_1: return Int32(CK_Q4_1)
        case .bf16: return Int32(CK_BF16)
        }
    }
}

/// Invalid quantized data or a matrix that a format cannot hold; one line for the user.
public struct QuantizationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A frozen `(rows, cols)` weight matrix kept in a block format: each row is its own run of
/// blocks, rows stored one after another. It is frozen by construction: it has no gradient and
/// no way to ask for one, so an optimizer can never be handed it; products with it give
/// gradients for their other operand only.
public final class QuantizedMatrix: Sendable {
    public let format: QuantizationFormat
    public let rows: Int
    public let cols: Int
    /// `rows · rowBytes` bytes of blocks, exactly as in a GGUF tensor of this type.
    public let bytes: [UInt8]

    /// Wraps raw blocks (from a checkpoint or a GGUF file), checking only their size.
    public init(format: QuantizationFormat, rows: Int, cols: Int, bytes: [UInt8]) throws {
        guard rows >= 0, cols >= 0 else { throw QuantizationError("negative shape [\(rows), \(cols)]") }
        guard cols % format.blockSize == 0 else {
            throw QuantizationError("\(format.rawValue) needs rows of a multiple of \(format.blockSize) values, got \(cols)")
        }
        let expected = rows * format.rowBytes(columns: cols)
        guard bytes.count == expected else {
            throw QuantizationError("\(format.rawValue) [\(rows), \(cols)] needs \(expected) bytes, got \(bytes.count)")
        }
        self.format = format
        self.rows = rows
        self.cols = cols
        self.bytes = bytes
    }

    /// Quantizes a row-major `(rows, cols)` float32 matrix with ggml's reference rounding.
    public convenience init(quantizing values: [Float], rows: Int, cols: Int, format: QuantizationFormat) throws {
        precondition(values.count == rows * cols, "quantizing: \(values.count) values for [\(rows), \(cols)]")
        guard cols % format.blockSize == 0 else {
            throw QuantizationError("\(format.rawValue) needs rows of a multiple of \(format.blockSize) values, got \(cols)")
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw QuantizationError("cannot quantize a non-finite value (element \(bad))")
        }
        let rowBytes = format.rowBytes(columns: cols)
        let blocks = [UInt8](unsafeUninitializedCapacity: rows * rowBytes) { buffer, initialized in
            values.withUnsafeBufferPointer { v in
                for r in 0..<rows {
                    ck_quantize_row(format.kernelID, v.baseAddress! + r * cols, buffer.baseAddress! + r * rowBytes, Int64(cols))
                }
            }
            initialized = rows * rowBytes
        }
        try self.init(format: format, rows: rows, cols: cols, bytes: blocks)
    }

    /// Quantizes a rank-2 tensor.
    public convenience init(quantizing tensor: Tensor, format: QuantizationFormat) throws {
        precondition(tensor.rank == 2, "quantizing needs a matrix, got shape \(tensor.shape)")
        try self.init(quantizing: tensor.data, rows: tensor.shape[0], cols: tensor.shape[1], format: format)
    }

    public var shape: [Int] { [rows, cols] }
    public var rowBytes: Int { format.rowBytes(columns: cols) }
    /// Always false: quantized weights never train (see the type's description).
    public var requiresGrad: Bool { false }

    /// Writes rows `range` as float32 into `out` (`range.count · cols` values).
    public func dequantizeRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "rows \(range) outside [0, \(rows))")
        bytes.withUnsafeBufferPointer { b in
            ck_dequantize_rows(format.kernelID, b.baseAddress! + range.lowerBound * rowBytes, Int64(range.count), Int64(cols), out)
        }
    }

    /// A float32 copy (tests, export, and the reference path they compare against).
    public func dequantized() -> Tensor {
        let values = [Float].uninitialized(count: rows * cols) { out in
            if rows * cols > 0 { dequantizeRows(0..<rows, into: out.baseAddress!) }
        }
        return Tensor(shape: shape, data: values)
    }

    /// The first value a non-finite scale (or bf16 value) makes non-finite, as a flat index,
    /// or nil: loads refuse such files as they refuse non-finite float32 tensors.
    public func firstNonFiniteValue() -> Int? {
        // An f16 is non-finite when its exponent bits are all ones; a bf16 likewise.
        func nonFinite(_ offset: Int, mask: UInt16) -> Bool {
            (UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8) & mask == mask
        }
        let blocksPerRow = cols / format.blockSize
        for block in 0..<(rows * blocksPerRow) {
            let at = block * format.bytesPerBlock
            let bad: Bool
            switch format {
            case .q8_0, .q4_0: bad = nonFinite(at, mask: 0x7C00)
            case .q4_1: bad = nonFinite(at, mask: 0x7C00) || nonFinite(at + 2, mask: 0x7C00)
            case .bf16: bad = nonFinite(at, mask: 0x7F80)
            }
            if bad { return block * format.blockSize }
        }
        return nil
    }

    /// Bytes held in memory.
    public var byteCount: Int { bytes.count }
}
