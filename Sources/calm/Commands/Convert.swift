import ArgumentParser
import CALMCheckpoint
import CALMComposition
import CALMHuggingFace
import Foundation

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a Hugging Face model directory to a CALM checkpoint.",
        discussion: """
            SRC holds config.json, model.safetensors (or shards with model.safetensors.index.json) \
            and tokenizer.json (+ tokenizer_config.json). Supported model types: \
            \(HuggingFaceArchitectures.supported). PyTorch pickle weights (*.bin, *.pt) are refused: \
            loading a pickle can run arbitrary code. F16 and BF16 weights are widened to float32. \
            The tokenizer is stored inside the checkpoint, so the result is self-contained.
            """)

    @Argument(help: "Hugging Face model directory.") var source: String
    @Argument(help: "Output checkpoint (.h5).") var output: String
    @Option(help: "Also register the converted model as an expert under this name.") var register: String?
    @Option(help: "The expert's domain (with --register).") var domain: String?
    @Option(help: "A one-line description (with --register).") var description = ""
    @Flag(help: "Replace an expert already registered under the --register name.") var replace = false
    @OptionGroup var registry: RegistryOptions

    func validate() throws {
        if register != nil, domain == nil { throw ValidationError("--register needs --domain") }
        if register == nil, domain != nil { throw ValidationError("--domain is only used with --register") }
    }

    func run() throws {
        try OutputPath.validate(output, option: "<output>")
        let converted = try HuggingFaceConverter.convert(directory: source, to: output)
        let c = converted.model.config
        print("converted \(source) -> \(output)")
        print("  \(converted.architecture.causalLMClass): \(c.numLayers) layers, width \(c.hiddenSize), \(c.numHeads) heads (\(c.numKVHeads) kv), vocab \(c.vocabSize), \(converted.model.parameterCount) parameters")
        print("  weights: \(converted.files.count) safetensors file(s), dtypes \(converted.dtypes.sorted().joined(separator: ", ")) -> F32")
        print("  tokenizer: \(converted.tokenizer.vocabularySize) tokens, bos \(converted.tokenizer.bosID.map(String.init) ?? "none"), eos \(converted.tokenizer.eosID.map(String.init) ?? "none")")
        if let name = register, let domain {
            let entry = try registry.expertRegistry.register(file: output, name: name, domain: domain,
                                                             description: description, replace: replace)
            print("registered \(entry.name) (\(entry.architecture), hash \(entry.contentHash.prefix(12)))")
            AnchorCheck.warnIfUnmatched(entry, registeredFrom: output, registry: registry.expertRegistry)
        }
    }
}
