import CALMCheckpoint
import CALMModels
import CALMSupport
import CALMTensor
import CALMTokenizers
import Foundation

/// Reads a Hugging Face model directory (`config.json`, safetensors weights, `tokenizer.json`)
/// into a `TransformerLM` strictly: every parameter must come from a tensor of the right
/// shape, and every tensor in the files must be used (old buffers aside).
public enum HuggingFaceConverter {
    /// Pickle-based formats, refused because loading them can run arbitrary code.
    static let pickleExtensions = ["bin", "pt", "pth", "ckpt", "pkl"]

    public struct Converted {
        public let model: TransformerLM
        public let tokenizer: HuggingFaceTokenizer
        public let architecture: any HuggingFaceArchitecture
        /// Safetensors files read, and the dtypes found.
        public let files: [String]
        public let dtypes: Set<String>
    }

    public static func load(directory: String) throws -> Converted {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ConversionError("\(directory): not a directory (expected a Hugging Face model directory)")
        }
        let hf = try HuggingFaceConfig(path: join(directory, "config.json"))
        let architecture = try HuggingFaceArchitectures.named(try hf.modelType)
        let config = try architecture.config(from: hf)
        let weights = try WeightFiles(directory: directory)
        let names = Set(weights.location.keys)
        var source = ConvertedWeights(files: weights, architecture: architecture.modelType, directory: directory) {
            architecture.source(for: $0, config: config, names: names)
        }
        let model = try TransformerLM(config: config, weights: &source)
        let used = source.used
        for name in weights.location.keys.sorted() where !used.contains(name) && !architecture.isIgnorableBuffer(name) {
            // A tied head may still be stored; accept it only if it really is the embedding.
            if config.tiedEmbeddings, name == "lm_head.weight" {
                let head = try weights.floats(name)
                if head.shape == model.tokenEmbedding.shape && head.data == model.tokenEmbedding.data { continue }
                throw ConversionError("\(weights.file(of: name)): lm_head.weight differs from the embedding, but config.json ties them (tie_word_embeddings)")
            }
            throw ConversionError("\(weights.file(of: name)): unexpected tensor \(name) (not a parameter of a \(architecture.modelType) model with this config.json)")
        }
        let tokenizer = try HuggingFaceTokenizer.load(directory: directory)
        guard tokenizer.vocabularySize <= config.vocabSize else {
            throw ConversionError("\(directory): tokenizer.json has \(tokenizer.vocabularySize) tokens but config.json vocab_size is \(config.vocabSize)")
        }
        return Converted(model: model, tokenizer: tokenizer, architecture: architecture, files: weights.files.map(\.path),
                         dtypes: Set(weights.files.flatMap { $0.entries.values.map(\.dtype.rawValue) }))
    }

    /// Converts `directory` and writes a CALM model checkpoint to `output` (atomically).
    @discardableResult
    public static func convert(directory: String, to output: String) throws -> Converted {
        let converted = try load(directory: directory)
        try ModelCheckpoint.save(model: converted.model, tokenizer: converted.tokenizer, to: output)
        return converted
    }

    static func join(_ directory: String, _ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
}

/// The safetensors files of a model directory: one `model.safetensors`, or the shards listed
/// by `model.safetensors.index.json`.
struct WeightFiles {
    let files: [SafetensorsFile]
    /// tensor name -> index into `files`
    let location: [String: Int]

    init(directory: String) throws {
        let join = HuggingFaceConverter.join
        let fm = FileManager.default
        let index = join(directory, "model.safetensors.index.json")
        let single = join(directory, "model.safetensors")
        if fm.fileExists(atPath: index) {
            guard let data = fm.contents(atPath: index), let map = JSONValue.parse(data)?["weight_map"]?.object else {
                throw ConversionError("\(index): is not JSON with a weight_map object")
            }
            var shardNames: [String] = []
            var wanted: [String: String] = [:]
            for (tensor, value) in map {
                guard let shard = value.string, !shard.contains("/"), !shard.hasPrefix(".") else {
                    throw ConversionError("\(index): weight_map entry \(tensor) does not name a file in the directory")
                }
                wanted[tensor] = shard
                if !shardNames.contains(shard) { shardNames.append(shard) }
            }
            shardNames.sort()
            files = try shardNames.map { try SafetensorsFile.open(join(directory, $0)) }
            var location: [String: Int] = [:]
            for (i, file) in files.enumerated() {
                for name in file.entries.keys {
                    guard wanted[name] == shardNames[i] else {
                        throw ConversionError("\(file.path): holds tensor \(name), which \(index) places \(wanted[name].map { "in \($0)" } ?? "nowhere")")
                    }
                    guard location[name] == nil else { throw ConversionError("\(file.path): tensor \(name) appears in two shards") }
                    location[name] = i
                }
            }
            if let missing = wanted.keys.sorted().first(where: { location[$0] == nil }) {
                throw ConversionError("\(join(directory, wanted[missing] ?? "")): lacks tensor \(missing) listed in \(index)")
            }
            self.location = location
        } else if fm.fileExists(atPath: single) {
            files = [try SafetensorsFile.open(single)]
            location = Dictionary(uniqueKeysWithValues: files[0].entries.keys.map { ($0, 0) })
        } else {
            let pickles = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter {
                HuggingFaceConverter.pickleExtensions.contains(($0 as NSString).pathExtension)
            }.sorted()
            if !pickles.isEmpty {
                throw ConversionError("\(directory): only PyTorch pickle weights (\(pickles.joined(separator: ", "))) were found; they are refused because loading a pickle can run arbitrary code. Save the model with safetensors (model.save_pretrained(dir, safe_serialization=True)) and convert that")
            }
            throw ConversionError("\(directory): no model.safetensors or model.safetensors.index.json")
        }
    }

    func floats(_ name: String) throws -> (shape: [Int], data: [Float]) {
        guard let i = location[name] else { throw ConversionError("no tensor \(name)") }
        return try files[i].floats(name)
    }

    func file(of name: String) -> String { location[name].map { files[$0].path } ?? "(weights)" }
}

/// Hands each CALM parameter the Hugging Face tensor it comes from, transformed and checked,
/// while the model is built (no model is initialised first).
struct ConvertedWeights: WeightSource {
    let files: WeightFiles
    let source: (String) -> TensorSource?
    let architecture: String
    let directory: String
    private(set) var used = Set<String>()

    init(files: WeightFiles, architecture: String, directory: String, source: @escaping (String) -> TensorSource?) {
        self.files = files
        self.source = source
        self.architecture = architecture
        self.directory = directory
    }

    mutating func weight(_ name: String, shape expected: [Int], initial: WeightInit) throws -> Tensor {
        guard let source = source(name) else { throw ConversionError("\(architecture): no source for parameter \(name)") }
        guard files.location[source.name] != nil else {
            throw ConversionError("\(directory): missing tensor \(source.name) (needed for \(name))")
        }
        let raw = try files.floats(source.name)
        let (shape, data) = try source.apply(shape: raw.shape, data: raw.data)
        guard shape == expected else {
            throw ConversionError("\(files.file(of: source.name)): tensor \(source.name) has shape \(raw.shape), expected \(expected) for \(name)")
        }
        if let bad = data.firstIndex(where: { !$0.isFinite }) {
            throw ConversionError("\(files.file(of: source.name)): tensor \(source.name) holds a non-finite value at element \(bad)")
        }
        used.insert(source.name)
        return Tensor(shape: shape, data: data)
    }
}
