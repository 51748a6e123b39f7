import ArgumentParser
import CALMCheckpoint
import CALMComposition
import CALMModels
import CALMTensor
import CALMTokenizers

/// Which model a command runs: a plain checkpoint or a composition (loaded with its anchor
/// and experts through the registry).
struct ModelSource: ParsableArguments {
    @Option(help: "A model checkpoint (.h5).")
    var model: String?

    @Option(help: "A composition checkpoint (.h5) from `calm compose`, in place of --model.")
    var composition: String?

    @OptionGroup var lookup: LookupOptions

    func validate() throws {
        guard (model == nil) != (composition == nil) else {
            throw ValidationError("give exactly one of --model and --composition")
        }
    }

    enum Loaded {
        case model(any CausalLanguageModel, any Tokenizer)
        case composition(LoadedComposition)

        var decoder: AnyIncrementalDecoder {
            switch self {
            case .model(let model, _): return AnyIncrementalDecoder(model)
            case .composition(let c): return AnyIncrementalDecoder(c.model)
            }
        }

        var tokenizer: any Tokenizer {
            switch self {
            case .model(_, let tokenizer): return tokenizer
            case .composition(let c): return c.tokenizer
            }
        }

        var vocabularySize: Int { decoder.vocabularySize }
        var maxContext: Int { decoder.maxContext }

        /// Logits `(B, T, V)` of a batch, without gradients; `gates` records a composition's gates.
        func logits(_ tokens: TokenBatch, gates: GateRecorder? = nil) -> Tensor {
            withoutGradients {
                switch self {
                case .model(let model, _): return model.logits(tokens)
                case .composition(let c): return c.model.forward(tokens, gates: gates)
                }
            }
        }

        /// Full-sequence logits `(1, T, V)` of one sequence, without gradients.
        func logits(_ ids: [Int], gates: GateRecorder? = nil) -> [Float] { logits(TokenBatch(ids), gates: gates).data }
    }

    func load() throws -> Loaded {
        try Self.load(model: model, composition: composition, resolver: lookup.resolver)
    }

    /// A composition when one is given, else the model (one of the two must be given).
    static func load(model: String?, composition: String?, resolver: ModelResolver) throws -> Loaded {
        if let composition {
            return .composition(try CompositionCheckpoint.load(composition, resolver: resolver))
        }
        guard let model else { throw CLIError("give --model or --composition") }
        // Any registered architecture that predicts tokens on its own, through its runtime.
        let file = try openCheckpoint(model, kind: "model")
        defer { try? file.close() }
        let header = try ModelHeader.read(file)
        guard let lm = try ArchitectureRegistry.build(file, header: header) as? any CausalLanguageModel else {
            throw CLIError("--model \(model): a \(header.modelType) model has no language-model head; it can only serve as an expert in a composition")
        }
        return .model(lm, header.tokenizer)
    }
}

extension Tokenizer {
    /// Prompt ids as training formatted them: `<bos>` then the text.
    func promptIDs(_ text: String) -> [Int] {
        encodeWithBOS(text)
    }
}
