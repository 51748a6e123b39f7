import CALMCheckpoint
import CALMModels
import CALMSupport
import CALMTokenizers
import Foundation

/// Writes a model checkpoint back as a Hugging Face directory that `from_pretrained` loads:
/// `model.safetensors`, `config.json`, and `tokenizer.json` + `tokenizer_config.json` when the
/// tokenizer came from one.
public enum HuggingFaceExporter {
    public struct Result {
        public let directory: String
        public let files: [String]
        /// Why no tokenizer files were written, when they were not.
        public let tokenizerNote: String?
    }

    public static func export(_ checkpoint: ModelCheckpoint, to directory: String) throws -> Result {
        let config = checkpoint.model.config
        if let stored = config.storedTokens {
            // Hugging Face models have a row for every token; inventing rows would change the model.
            throw ConversionError("\(checkpoint.path): stores \(stored.count) of \(config.vocabSize) tokens (stored_tokens), which Hugging Face models cannot express")
        }
        let architecture = try HuggingFaceArchitectures.named(config.architecture)
        var hfConfig = try architecture.exportConfig(config)
        hfConfig["model_type"] = architecture.modelType
        hfConfig["architectures"] = [architecture.causalLMClass]
        var files: [(name: String, write: (String) throws -> Void)] = []
        let tensors = architecture.exportTensors(checkpoint.model)
        files.append(("model.safetensors", { try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], to: $0) }))
        var note: String?
        if let tokenizer = checkpoint.tokenizer as? HuggingFaceTokenizer {
            let specials = tokenizer.specialTokens
            let bos = tokenizer.bosID ?? specials.bos.flatMap { tokenizer.id(of: $0) }
            for (key, id) in [("bos_token_id", bos), ("eos_token_id", tokenizer.eosID), ("pad_token_id", tokenizer.padID)] {
                if let id { hfConfig[key] = id }
            }
            var tokenizerConfig: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast"]
            for (key, name) in [("bos_token", specials.bos), ("eos_token", specials.eos), ("pad_token", specials.pad)] {
                if let name { tokenizerConfig[key] = name }
            }
            if let addBOS = specials.addBOS { tokenizerConfig["add_bos_token"] = addBOS }
            if let template = specials.chatTemplate { tokenizerConfig["chat_template"] = template }
            let json = tokenizer.tokenizerJSON
            files.append(("tokenizer.json", { try writeAtomically(Data(json.utf8), to: $0) }))
            let tokenizerConfigData = try jsonData(tokenizerConfig)
            files.append(("tokenizer_config.json", { try writeAtomically(tokenizerConfigData, to: $0) }))
        } else {
            note = "the model's \(type(of: checkpoint.tokenizer).kind) tokenizer has no tokenizer.json form; only the weights and config.json were written"
        }
        let configData = try jsonData(hfConfig)
        files.append(("config.json", { try writeAtomically(configData, to: $0) }))

        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for file in files { try file.write(HuggingFaceConverter.join(directory, file.name)) }
        return Result(directory: directory, files: files.map(\.name), tokenizerNote: note)
    }

    static func jsonData(_ object: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }
}
