import CALMCheckpoint
import CALMModels
import CALMTensor
import CALMTokenizers
import Foundation

/// Reads a GGUF file (llama.cpp's format) into a `TransformerLM` and its tokenizer, strictly:
/// every parameter comes from a tensor of the right shape, dequantized as ggml does, and every
/// tensor in the file must be used.
public enum GGUFConverter {
    public struct Converted {
        public let model: TransformerLM
        public let tokenizer: HuggingFaceTokenizer
        public let architecture: GGUFArchitecture
        public let file: GGUFFile
        /// How many tensors of each ggml type the file holds.
        public var typeCounts: [GGMLType: Int] {
            file.tensors.reduce(into: [:]) { $0[$1.type, default: 0] += 1 }
        }
    }

    /// - keepQuantized: Q8_0/Q4_0/Q4_1/BF16 matrices stay in their stored blocks (frozen);
    ///   every other type is widened to float32.
    public static func load(path: String, keepQuantized: Bool = false) throws -> Converted {
        try load(file: GGUFFile.open(path), keepQuantized: keepQuantized)
    }

    /// Converts an opened (validated) file.
    public static func load(file: GGUFFile, keepQuantized: Bool = false) throws -> Converted {
        let path = file.path
        let metadata = GGUFMetadata(file)
        if let parts = try metadata.optionalInt("split.count"), parts > 1 {
            throw metadata.fail("split.count", "= \(parts): this is one part of a split model; merge the parts first (llama-gguf-split --merge)")
        }
        let architecture = try GGUFArchitecture.named(try metadata.string("general.architecture"), path: path)
        let config = try architecture.config(metadata, file: file)
        var weights = GGUFWeights(file: file, sources: architecture.sources(for: config), keepQuantized: keepQuantized)
        let model = try TransformerLM(config: config, weights: &weights)
        let used = weights.used
        for t in file.tensors where !used.contains(t.name) && !architecture.isConsumedElsewhere(t.name, config: config) {
            throw GGUFError(path: path, "unexpected tensor \(t.name) (\(t.type), ggml dims \(t.dims)): not a parameter of a \(architecture.family.rawValue) model with this metadata")
        }
        let tokenizer = try GGUFTokenizer.load(metadata, architecture: architecture.family.rawValue)
        guard tokenizer.vocabularySize <= config.vocabSize else {
            throw GGUFError(path: path, "the tokenizer has \(tokenizer.vocabularySize) tokens but token_embd.weight only \(config.vocabSize) rows")
        }
        return Converted(model: model, tokenizer: tokenizer, architecture: architecture, file: file)
    }

    /// Converts `path` and writes a CALM model checkpoint to `output` (atomically).
    @discardableResult
    public static func convert(path: String, to output: String, keepQuantized: Bool = false) throws -> Converted {
        let converted = try load(path: path, keepQuantized: keepQuantized)
        try ModelCheckpoint.save(model: converted.model, tokenizer: converted.tokenizer, to: output)
        return converted
    }

    /// Whether `path` names a GGUF file: by its extension, or by its magic for other names.
    public static func isGGUF(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            return (path as NSString).pathExtension.lowercased() == "gguf"
        }
        return (path as NSString).pathExtension.lowercased() == "gguf" || GGUFFile.hasMagic(path)
    }
}
