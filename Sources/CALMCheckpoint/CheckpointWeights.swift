import CALMModels
import CALMTensor

/// Reads each weight a model asks for straight from a checkpoint's `/tensors` group, strictly:
/// the tensor must exist with exactly the requested shape and finite values, and `finish()`
/// refuses a file that holds tensors the model never asked for. Weights come back frozen.
public struct CheckpointWeights: WeightSource {
    public let file: HDF5File
    public let group: String
    private let stored: Set<String>
    private var used: Set<String> = []
    private let trainable: Bool

    /// - trainable: whether loaded weights take gradients (a composition's bridges when resuming).
    public init(file: HDF5File, group: String = CheckpointFormat.tensorsGroup, trainable: Bool = false) throws {
        guard file.exists(group) else { throw CheckpointError(path: file.path, message: "missing group /\(group)") }
        self.file = file
        self.group = group
        self.trainable = trainable
        stored = Set(try file.children(of: group))
    }

    public mutating func weight(_ name: String, shape: [Int], initial: WeightInit) throws -> Tensor {
        guard stored.contains(name) else { throw CheckpointError(path: file.path, message: "missing tensor \(name)") }
        if let format = try quantization(of: name) {
            throw CheckpointError(path: file.path, message: "tensor \(name) is stored quantized (\(format)), but this weight must be float32")
        }
        let tensor = try readCheckedTensor(name, expectedShape: shape, from: file, group: group)
        tensor.requiresGrad = trainable
        used.insert(name)
        return tensor
    }

    /// A projection weight: kept quantized when stored quantized (no float32 copy is made),
    /// else read as `weight` reads it.
    public mutating func matrix(_ name: String, shape: [Int], initial: WeightInit) throws -> WeightMatrix {
        guard stored.contains(name) else { throw CheckpointError(path: file.path, message: "missing tensor \(name)") }
        guard let format = try quantization(of: name) else { return .dense(try weight(name, shape: shape, initial: initial)) }
        if trainable {
            throw CheckpointError(path: file.path, message: "tensor \(name) is quantized (\(format)) and cannot be trained")
        }
        let matrix = try readQuantizedMatrix(name, format: format, expectedShape: shape, from: file, group: group)
        used.insert(name)
        return .quantized(matrix)
    }

    /// The stored format of `name`, or nil for float32.
    private func quantization(of name: String) throws -> String? {
        try file.stringAttribute(QuantizedLayout.formatAttribute, of: "\(group)/\(name)")
    }

    /// Refuses tensors in the file that no weight was read from.
    public func finish() throws {
        if let unexpected = stored.subtracting(used).sorted().first {
            throw CheckpointError(path: file.path, message: "unexpected tensor \(unexpected)")
        }
    }
}

/// Reads `group/name`, checking its shape and that every value is finite.
func readCheckedTensor(_ name: String, expectedShape: [Int], from file: HDF5File, group: String) throws -> Tensor {
    let shape: [Int], data: [Float]
    do { (shape, data) = try file.readFloats("\(group)/\(name)") } catch let error as HDF5Error where error.isChecksumMismatch {
        throw CheckpointError(path: file.path, message: "tensor \(name) is damaged (checksum mismatch)")
    }
    guard shape == expectedShape else {
        throw CheckpointError(path: file.path, message: "tensor \(name) has shape \(shape), expected \(expectedShape)")
    }
    if !allFinite(data), let bad = data.firstIndex(where: { !$0.isFinite }) {
        throw CheckpointError(path: file.path, message: "tensor \(name) holds a non-finite value at element \(bad)")
    }
    return Tensor(shape: shape, data: data)
}

/// Whether every value is finite, at memory speed: x · 0 is 0 for finite x and NaN for an
/// infinity or NaN, and a NaN survives any sum (16 lanes at a time).
func allFinite(_ values: [Float]) -> Bool {
    values.withUnsafeBufferPointer { buffer in
        let count = buffer.count, wide = count / 16 * 16
        var lanes = SIMD16<Float>()
        guard let base = buffer.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        var i = 0
        while i < wide {
            lanes += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * 0
            i += 16
        }
        var tail: Float = 0
        while i < count {
            tail += buffer[i] * 0
            i += 1
        }
        return (lanes.sum() + tail).isFinite
    }
}

/// Reads a quantized dataset, checking its format name, logical shape, stored size and that
/// every scale is finite.
func readQuantizedMatrix(_ name: String, format formatName: String, expectedShape: [Int], from file: HDF5File,
                         group: String) throws -> QuantizedMatrix {
    let path = "\(group)/\(name)"
    guard let format = QuantizationFormat(rawValue: formatName) else {
        let known = QuantizationFormat.allCases.map(\.rawValue).joined(separator: ", ")
        throw CheckpointError(path: file.path, message: "tensor \(name) has unknown quantization \"\(formatName)\" (known: \(known))")
    }
    guard let shape = try file.intArrayAttribute(QuantizedLayout.shapeAttribute, of: path) else {
        throw CheckpointError(path: file.path, message: "quantized tensor \(name) has no shape attribute")
    }
    guard shape == expectedShape, shape.count == 2 else {
        throw CheckpointError(path: file.path, message: "tensor \(name) has shape \(shape), expected \(expectedShape)")
    }
    let stored = try file.readUnsigned(path, elementSize: format == .bf16 ? 2 : 1)
    let storedShape = format == .bf16 ? shape : [shape[0], format.rowBytes(columns: shape[1])]
    guard stored.shape == storedShape else {
        throw CheckpointError(path: file.path, message: "quantized tensor \(name) holds \(stored.shape) elements, expected \(storedShape) for \(format.rawValue) \(shape)")
    }
    let matrix: QuantizedMatrix
    do { matrix = try QuantizedMatrix(format: format, rows: shape[0], cols: shape[1], bytes: stored.bytes) } catch {
        throw CheckpointError(path: file.path, message: "tensor \(name): \(error)")
    }
    if let bad = matrix.firstNonFiniteValue() {
        throw CheckpointError(path: file.path, message: "tensor \(name) holds a non-finite scale at element \(bad)")
    }
    return matrix
}
