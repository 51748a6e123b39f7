import ArgumentParser
import CALMCheckpoint
import CALMComposition
import CALMGGUF
import CALMHuggingFace
import CALMModels
import CALMTokenizers
import Foundation

struct Convert: ParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(
        abstract: "Convert a Hugging Face model directory or a GGUF file to a CALM checkpoint.",
        discussion: """
            A Hugging Face SRC directory holds config.json, model.safetensors (or shards with model.safetensors.index.json) \
            and tokenizer.json (+ tokenizer_config.json). Supported model types: \
            \(Self.supportedTypes). PyTorch pickle weights (*.bin, *.pt) are refused: \
            loading a pickle can run arbitrary code. F16 and BF16 weights are widened to float32. \
            A GGUF SRC (llama.cpp's format, v2/v3, recognised by its .gguf extension or magic) \
            holds one of the architectures \(GGUFArchitecture.supported); its tensors (F32, F16, BF16, \
            Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K-Q6_K) are dequantized to F32 as ggml does, and its \
            tokenizer.ggml.* vocabulary and chat template become a Hugging Face tokenizer. \
            The tokenizer is stored inside the checkpoint, so the result is self-contained.
            """) }

    /// Built-in families and those added by the running tool's extensions.
    static var supportedTypes: String {
        (Array(HuggingFaceArchitectures.all.keys) + Array(CommandLineSetup.conversions.keys)).sorted().joined(separator: ", ")
    }

    @Argument(help: "Hugging Face model directory, or a .gguf file.") var source: String
    @Argument(help: "Output checkpoint (.h5).") var output: String
    @Option(help: "Also register the converted model as an expert under this name.") var register: String?
    @Option(help: "The expert's domain (with --register).") var domain: String?
    @Option(help: "A one-line description (with --register).") var description = ""
    @Flag(help: "Replace an expert already registered under the --register name.") var replace = false
    @Flag(help: "GGUF: widen every tensor to float32 (by default Q8_0, Q4_0, Q4_1 and BF16 matrices stay as stored).")
    var float32 = false
    @OptionGroup var registry: RegistryOptions

    func validate() throws {
        if register != nil, domain == nil { throw ValidationError("--register needs --domain") }
        if register == nil, domain != nil { throw ValidationError("--domain is only used with --register") }
    }

    func run() throws {
        try OutputPath.validate(output, option: "<output>")
        if let conversion = try addedConversion() {
            let lines = try conversion.convert(source, output)
            print("converted \(source) -> \(output)")
            for line in lines { print("  \(line)") }
            return try registerIfAsked()
        }
        let model: TransformerLM, tokenizer: HuggingFaceTokenizer, family: String, weights: String
        if GGUFConverter.isGGUF(source) {
            let converted = try GGUFConverter.convert(path: source, to: output, keepQuantized: !float32)
            (model, tokenizer, family) = (converted.model, converted.tokenizer, "GGUF \(converted.architecture.family.rawValue)")
            let types = converted.typeCounts.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key)" }
            weights = "GGUF v\(converted.file.version), \(converted.file.tensors.count) tensors (\(types.joined(separator: ", "))) -> \(float32 ? "F32" : "kept where supported (\(model.weights.filter { $0.1.quantized != nil }.count) quantized matrices), else F32")"
        } else {
            let converted = try HuggingFaceConverter.convert(directory: source, to: output)
            (model, tokenizer, family) = (converted.model, converted.tokenizer, converted.architecture.causalLMClass)
            weights = "\(converted.files.count) safetensors file(s), dtypes \(converted.dtypes.sorted().joined(separator: ", ")) -> F32"
        }
        let c = model.config
        print("converted \(source) -> \(output)")
        print("  \(family): \(c.numLayers) layers, width \(c.hiddenSize), \(c.numHeads) heads (\(c.numKVHeads) kv), vocab \(c.vocabSize), \(model.parameterCount) parameters")
        print("  weights: \(weights)")
        print("  tokenizer: \(tokenizer.vocabularySize) tokens, bos \(tokenizer.bosID.map(String.init) ?? "none"), eos \(tokenizer.eosID.map(String.init) ?? "none")\(tokenizer.specialTokens.chatTemplate == nil ? "" : ", chat template")")
        try registerIfAsked()
    }

    /// A conversion an extension added for this directory's model_type (built-in ones come first).
    private func addedConversion() throws -> HuggingFaceConversion? {
        guard !GGUFConverter.isGGUF(source), !CommandLineSetup.conversions.isEmpty else { return nil }
        let configPath = (source as NSString).appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configPath) else { return nil }  // the built-in path reports it
        let type = try HuggingFaceConfig(path: configPath).modelType
        guard HuggingFaceArchitectures.all[type] == nil else { return nil }
        return CommandLineSetup.conversions[type]
    }

    private func registerIfAsked() throws {
        if let name = register, let domain {
            let entry = try registry.expertRegistry.register(file: output, name: name, domain: domain,
                                                             description: description, replace: replace)
            print("registered \(entry.name) (\(entry.architecture), hash \(entry.contentHash.prefix(12)))")
            AnchorCheck.warnIfUnmatched(entry, registeredFrom: output, registry: registry.expertRegistry)
        }
    }
}
