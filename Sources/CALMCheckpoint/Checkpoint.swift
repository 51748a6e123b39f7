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
/// /tensors/<dotted.name> float32 datasets, one per parameter, PyTorch (out, in) layout
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
