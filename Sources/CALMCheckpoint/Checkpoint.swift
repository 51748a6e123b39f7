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
public struct CheckpointError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): \(message)" }
}

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
        let shape: [Int], data: [Float]
        do { (shape, data) = try file.readFloats("\(group)/\(name)") } catch let error as HDF5Error where error.isChecksumMismatch {
            throw CheckpointError(path: file.path, message: "tensor \(name) is damaged (checksum mismatch)")
        }
        guard shape == tensor.shape else {
            throw CheckpointError(path: file.path, message: "tensor \(name) has shape \(shape), expected \(tensor.shape)")
        }
        if let bad = data.firstIndex(where: { !$0.isFinite }) {
            throw CheckpointError(path: file.path, message: "tensor \(name) holds a non-finite value at element \(bad)")
        }
        tensor.data = data
    }
}

/// A transformer LM with its tokenizer, as stored in a model checkpoint.
public struct ModelCheckpoint {
    public let model: TransformerLM
    public let tokenizer: any Tokenizer
    public let path: String

    /// Loads and validates a model checkpoint. The model comes back frozen.
    public static func load(_ path: String) throws -> ModelCheckpoint {
        let file = try openCheckpoint(path, kind: "model")
        guard let configJSON = try file.stringAttribute("config") else {
            throw CheckpointError(path: path, message: "missing config attribute")
        }
        let config: TransformerConfig
        do { config = try TransformerConfig.parse(json: configJSON) } catch {
            throw CheckpointError(path: path, message: "\(error)")
        }
        if let type = try file.stringAttribute("model_type"), type != config.architecture {
            throw CheckpointError(path: path, message: "model_type \"\(type)\" disagrees with config architecture \"\(config.architecture)\"")
        }
        guard let tokenizerJSON = try file.stringAttribute("tokenizer") else {
            throw CheckpointError(path: path, message: "missing tokenizer attribute")
        }
        let tokenizer: any Tokenizer
        do { tokenizer = try TokenizerRegistry.load(json: tokenizerJSON) } catch {
            throw CheckpointError(path: path, message: "\(error)")
        }
        guard tokenizer.vocabularySize <= config.vocabSize else {
            throw CheckpointError(path: path, message: "tokenizer has \(tokenizer.vocabularySize) tokens but the model only \(config.vocabSize)")
        }
        let model = try TransformerLM(config: config, seed: 0)
        try readTensors(into: model.parameters, from: file)
        model.setTrainable(false)
        return ModelCheckpoint(model: model, tokenizer: tokenizer, path: path)
    }

    /// Saves atomically. `extra` may add more groups (e.g. training state) to the same file.
    public static func save(model: TransformerLM, tokenizer: any Tokenizer, to path: String,
                            extra: ((HDF5File) throws -> Void)? = nil) throws {
        try writeAtomically(to: path) { temporary in
            let file = try HDF5File.create(temporary)
            try writeCheckpointHeader(file, kind: "model")
            try file.setAttribute("model_type", model.config.architecture)
            try file.setAttribute("config", try model.config.jsonString())
            try file.setAttribute("tokenizer", try tokenizer.serialized())
            try writeTensors(model.parameters, to: file)
            try extra?(file)
            try sealCheckpoint(file)
            try file.close()
        }
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
