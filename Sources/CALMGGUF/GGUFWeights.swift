import CALMModels
import CALMTensor

/// Hands each CALM parameter its GGUF tensor, dequantized to float32 and transformed back to
/// the Hugging Face layout, while the model is built (no model is initialised first). Every
/// tensor is checked for shape and finite values; `used` records what was read, so the
/// converter can refuse files with tensors nothing asked for.
public struct GGUFWeights: WeightSource {
    public let file: GGUFFile
    public let sources: [String: GGUFTensorSource]
    public private(set) var used = Set<String>()
    /// Hand Q8_0, Q4_0, Q4_1 and BF16 matrices over as they are stored (blocks copied, rows
    /// reordered where the layout needs it) instead of widening them to float32.
    public let keepQuantized: Bool

    public init(file: GGUFFile, sources: [String: GGUFTensorSource], keepQuantized: Bool = false) {
        self.file = file
        self.sources = sources
        self.keepQuantized = keepQuantized
    }

    /// The in-memory format a ggml type is kept in, when it is one the kernels run directly.
    static func keptFormat(_ type: GGMLType) -> QuantizationFormat? {
        switch type {
        case .q8_0: return .q8_0
        case .q4_0: return .q4_0
        case .q4_1: return .q4_1
        case .bf16: return .bf16
        default: return nil
        }
    }

    public mutating func matrix(_ name: String, shape expected: [Int], initial: WeightInit) throws -> WeightMatrix {
        guard keepQuantized, let source = sources[name], let info = file.tensor(source.name),
              let format = Self.keptFormat(info.type), info.dims.count == 2 else {
            return .dense(try weight(name, shape: expected, initial: initial))
        }
        // ggml dims are innermost first: a row of `cols` values is a whole number of blocks.
        let (cols, rows) = (info.dims[0], info.dims[1])
        let rowBytes = format.rowBytes(columns: cols)
        let stored = [UInt8](file.rawBytes(info))
        guard stored.count == rows * rowBytes else {
            throw fail("tensor \(source.name) (\(info.type)) holds \(stored.count) bytes, expected \(rows * rowBytes)")
        }
        let (outRows, bytes) = try rearrange(source.transform, tensor: source.name, rows: rows, rowBytes: rowBytes, bytes: stored)
        guard [outRows, cols] == expected else {
            throw fail("tensor \(source.name) (\(info.type), ggml dims \(info.dims)) gives shape \([outRows, cols]), expected \(expected) for \(name)")
        }
        let matrix: QuantizedMatrix
        do { matrix = try QuantizedMatrix(format: format, rows: outRows, cols: cols, bytes: bytes) } catch {
            throw fail("tensor \(source.name): \(error)")
        }
        if let bad = matrix.firstNonFiniteValue() {
            throw fail("tensor \(source.name) (\(info.type)) holds a non-finite value at element \(bad)")
        }
        used.insert(source.name)
        return .quantized(matrix)
    }

    /// The row-level transforms on stored blocks: each row's blocks move as a unit.
    private func rearrange(_ transform: GGUFTensorSource.Transform, tensor: String, rows: Int, rowBytes: Int,
                           bytes: [UInt8]) throws -> (rows: Int, bytes: [UInt8]) {
        switch transform {
        case .identity:
            return (rows, bytes)
        case .add:
            throw fail("tensor \(tensor): an offset cannot be applied to quantized blocks")
        case .unpermuteRows(let heads):
            return (rows, try unpermutedRows(bytes, rows: rows, heads: heads, rowWidth: rowBytes, tensor: tensor))
        case .fusedPart(let part, let parts):
            guard rows % parts == 0 else { throw fail("tensor \(tensor) has \(rows) rows, which do not split into \(parts) parts") }
            let n = rows / parts
            return (n, Array(bytes[(part * n * rowBytes)..<((part + 1) * n * rowBytes)]))
        }
    }

    /// Undoes llama.cpp's q/k row permutation on rows of `rowWidth` elements (float values, or
    /// the bytes of a quantized row): stored row h·D + 2i + j is Hugging Face row h·D + j·D/2 + i.
    private func unpermutedRows<T>(_ values: [T], rows: Int, heads: Int, rowWidth: Int, tensor: String) throws -> [T] {
        guard heads > 0, rows % heads == 0, (rows / heads) % 2 == 0 else {
            throw fail("tensor \(tensor) has \(rows) rows, which do not split into \(heads) heads of even size")
        }
        let (dim, half) = (rows / heads, rows / heads / 2)
        var out = values
        for h in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let from = (h * dim + 2 * i + j) * rowWidth, to = (h * dim + j * half + i) * rowWidth
                    out[to..<(to + rowWidth)] = values[from..<(from + rowWidth)]
                }
            }
        }
        return out
    }

    private func fail(_ message: String) -> GGUFError { GGUFError(path: file.path, message) }

    public mutating func weight(_ name: String, shape expected: [Int], initial: WeightInit) throws -> Tensor {
        guard let source = sources[name] else { throw fail("no GGUF tensor is known for parameter \(name)") }
        guard let info = file.tensor(source.name) else { throw fail("lacks tensor \(source.name) (needed for \(name))") }
        let raw = try file.floats(source.name)
        let (shape, data) = try apply(source.transform, to: source.name, shape: raw.shape, data: raw.data)
        guard shape == expected else {
            throw fail("tensor \(source.name) (\(info.type), ggml dims \(info.dims)) gives shape \(shape), expected \(expected) for \(name)")
        }
        if let bad = data.firstIndex(where: { !$0.isFinite }) {
            throw fail("tensor \(source.name) (\(info.type)) holds a non-finite value at element \(bad)")
        }
        used.insert(source.name)
        return Tensor(shape: shape, data: data)
    }

    /// `(shape, data)` in PyTorch order after `transform`.
    func apply(_ transform: GGUFTensorSource.Transform, to tensor: String, shape: [Int], data: [Float]) throws -> ([Int], [Float]) {
        switch transform {
        case .identity:
            return (shape, data)
        case .add(let offset):
            return (shape, data.map { $0 + offset })
        case .unpermuteRows(let heads):
            let rows = shape.first ?? 0
            return (shape, try unpermutedRows(data, rows: rows, heads: heads, rowWidth: shape.dropFirst().reduce(1, *), tensor: tensor))
        case .fusedPart(let part, let parts):
            guard let rows = shape.first, rows % parts == 0 else {
                throw fail("tensor \(tensor) has shape \(shape), which does not split into \(parts) parts")
            }
            let n = rows / parts
            let width = shape.dropFirst().reduce(1, *)
            return ([n] + shape.dropFirst(), Array(data[(part * n * width)..<((part + 1) * n * width)]))
        }
    }
}
