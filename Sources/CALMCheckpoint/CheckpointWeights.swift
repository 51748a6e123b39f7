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
        let tensor = try readCheckedTensor(name, expectedShape: shape, from: file, group: group)
        tensor.requiresGrad = trainable
        used.insert(name)
        return tensor
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
