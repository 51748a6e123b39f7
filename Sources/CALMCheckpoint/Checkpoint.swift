import CALMModels
import CALMSupport
import CALMTensor
import CALMTokenizers
import Foundation

/// The on-disk layout shared by every CALM checkpoint (HDF5):
///
/// ```
/// /                      attributes: format = "calm", format_version = 1,
///                                    kind = "model" | "composition",
///                                    model_type = <architecture>, config = <JSON>,
///                                    tokenizer = <JSON>
/// /tensors/<dotted.name> float32 datasets, one per parameter, PyTorch (out, in) layout; a
///                        quantized weight is a uint8 dataset of its blocks (rows, bytes per
///                        row), bf16 a uint16 dataset (rows, cols), both with attributes
///                        quantization = "q8_0" | "q4_0" | "q4_1" | "bf16", shape = [rows, cols]
/// /training/...          optional resumable training state (optimizer moments, progress)
/// ```
public enum CheckpointFormat {
    public static let name = "calm"
    public static let version = 1
    public static let tensorsGroup = "tensors"
    public static let trainingGroup = "training"
}

/// A problem with a checkpoint's content; the message names the file and the object.
public typealias CheckpointError = FileError

/// Opens a checkpoint and checks its format name, version and kind.
public func openCheckpoint(_ path: String, kind expectedKind: String) throws -> HDF5File {
    let file = try HDF5File.open(path)
    try requireCALMFormat(file)
    guard let version = try file.intAttribute("format_version") else {
        throw CheckpointError(path: path, message: "missing format_version attribute")
    }
    guard version == CheckpointFormat.version else {
        throw CheckpointError(path: path, message: "unsupported format_version \(version) (this build reads \(CheckpointFormat.version))")
    }
    let kind = try file.stringAttribute("kind") ?? "model"
    guard kind == expectedKind else {
        throw CheckpointError(path: path, message: "is a \(kind) checkpoint, expected a \(expectedKind) checkpoint")
    }
    // HDF5File.open has verified the seal of a checksummed file; an older one loads unchecked.
    if !file.isSealed { CheckpointIntegrity.noteMissingChecksums(path) }
    return file
}

/// Writes the format attributes and every tensor of `parameters` under `/tensors`.
public func writeCheckpointHeader(_ file: HDF5File, kind: String) throws {
    try file.setAttribute("format", CheckpointFormat.name)
    try file.setAttribute("format_version", CheckpointFormat.version)
    try file.setAttribute("kind", kind)
}

public func writeTensors(_ parameters: NamedParameters, to file: HDF5File, group: String = CheckpointFormat.tensorsGroup) throws {
    try file.createGroup(group)
    for (name, tensor) in parameters {
        try file.writeFloats("\(group)/\(name)", shape: tensor.shape, data: tensor.data)
    }
}

/// Writes every weight under `group`: float32 as before, quantized ones as raw blocks (see
/// `CheckpointFormat`).
public func writeWeights(_ weights: NamedWeights, to file: HDF5File, group: String = CheckpointFormat.tensorsGroup) throws {
    try file.createGroup(group)
    for (name, weight) in weights {
        switch weight {
        case .dense(let tensor):
            try file.writeFloats("\(group)/\(name)", shape: tensor.shape, data: tensor.data)
        case .quantized(let matrix):
            try writeQuantized(matrix, at: "\(group)/\(name)", to: file)
        }
    }
}

/// The attribute naming a dataset's quantization format, and the one holding its logical shape.
public enum QuantizedLayout {
    public static let formatAttribute = "quantization"
    public static let shapeAttribute = "shape"
}

func writeQuantized(_ matrix: QuantizedMatrix, at path: String, to file: HDF5File) throws {
    if matrix.format == .bf16 {
        try file.writeUnsigned(path, shape: matrix.shape, elementSize: 2, bytes: matrix.bytes)
    } else {
        try file.writeUnsigned(path, shape: [matrix.rows, matrix.rowBytes], elementSize: 1, bytes: matrix.bytes)
    }
    try file.setAttribute(QuantizedLayout.formatAttribute, matrix.format.rawValue, on: path)
    try file.setAttribute(QuantizedLayout.shapeAttribute, matrix.shape, on: path)
}

/// Fills `parameters` from `/tensors`, strictly: every expected tensor must be present with
/// its exact shape, and the file may hold no other tensor.
public func readTensors(into parameters: NamedParameters, from file: HDF5File, group: String = CheckpointFormat.tensorsGroup) throws {
    guard file.exists(group) else { throw CheckpointError(path: file.path, message: "missing group /\(group)") }
    let stored = Set(try file.children(of: group))
    let expected = Set(parameters.map(\.name))
    if let missing = parameters.map(\.name).first(where: { !stored.contains($0) }) {
        throw CheckpointError(path: file.path, message: "missing tensor \(missing)")
    }
    if let unexpected = stored.subtracting(expected).sorted().first {
        throw CheckpointError(path: file.path, message: "unexpected tensor \(unexpected)")
    }
    for (name, tensor) in parameters {
        tensor.data = try readCheckedTensor(name, expectedShape: tensor.shape, from: file, group: group).data
    }
}

/// The `kind` of a checkpoint ("model" or "composition"), after checking its format.
public func checkpointKind(_ path: String) throws -> String {
    let file = try HDF5File.open(path)
    defer { try? file.close() }
    try requireCALMFormat(file)
    return try file.stringAttribute("kind") ?? "model"
}

private func requireCALMFormat(_ file: HDF5File) throws {
    guard try file.stringAttribute("format") == CheckpointFormat.name else {
        throw CheckpointError(path: file.path, message: "not a CALM checkpoint (no format = \"\(CheckpointFormat.name)\" attribute)")
    }
}
