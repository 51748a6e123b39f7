import ArgumentParser
import CALMModels
import CALMTraining
import Foundation

/// The architecture flags of `calm pretrain`. All optional: nil means "not given", so a run
/// that takes its model from a checkpoint (--resume, --init-from) or from --config can tell
/// an explicit value that disagrees with it (refused) from a default (not applied).
struct ModelFlags: ParsableArguments {
    @Option(help: "Architecture when no --config: llama or gpt2 (default: llama).") var architecture: String?
    @Option(parsing: .unconditional, help: "Transformer blocks (default: 4).") var layers: Int?
    @Option(parsing: .unconditional, help: "Model width (default: 128).") var hidden: Int?
    @Option(parsing: .unconditional, help: "Attention heads (default: 4).") var heads: Int?
    @Option(parsing: .unconditional, help: "Key/value heads (grouped-query attention; default: --heads).") var kvHeads: Int?
    @Option(parsing: .unconditional, help: "MLP width (default: 4 x --hidden).") var ffn: Int?
    @Option(parsing: .unconditional, help: "Longest sequence the model supports (default: --seq-len).") var maxPositions: Int?
    @Option(parsing: .unconditional, help: """
        Training sequence length in tokens (default: 128, at most the model's max positions; \
        with --resume: the checkpoint's).
        """)
    var seqLen: Int?

    static let defaultSequenceLength = 128

    func checkRanges() throws {
        if let architecture, !["llama", "gpt2"].contains(architecture) {
            throw CLIError("--architecture must be llama or gpt2, got \(architecture)")
        }
        for (value, option) in [(layers, "--layers"), (hidden, "--hidden"), (heads, "--heads"), (kvHeads, "--kv-heads"),
                                (ffn, "--ffn")] {
            try OptionCheck.atLeast(value, 1, option)
        }
        try OptionCheck.atLeast(maxPositions, 2, "--max-positions")
        try OptionCheck.atLeast(seqLen, 2, "--seq-len")
    }

    /// The explicitly given flags beside the value each describes in `config`.
    private func given(against config: TransformerConfig) -> [(option: String, given: String, actual: String)] {
        let pairs: [(String, Int?, Int)] = [
            ("--layers", layers, config.numLayers), ("--hidden", hidden, config.hiddenSize), ("--heads", heads, config.numHeads),
            ("--kv-heads", kvHeads, config.numKVHeads), ("--ffn", ffn, config.intermediateSize),
            ("--max-positions", maxPositions, config.maxPositions),
        ]
        var out = pairs.compactMap { option, value, actual in value.map { (option, "\($0)", "\(actual)") } }
        if let architecture { out.insert(("--architecture", architecture, config.architecture), at: 0) }
        return out
    }

    /// Refuses flags that disagree with a model that comes from elsewhere (`source`, e.g.
    /// "x.h5 (--resume)"), naming the option and both values.
    func requireAgreement(with config: TransformerConfig, source: String) throws {
        for entry in given(against: config) where entry.given != entry.actual {
            throw CLIError("\(entry.option) \(entry.given) conflicts with \(entry.actual) in \(source); leave \(entry.option) out to use the model as it is")
        }
    }

    /// A fresh model's configuration: from --config (JSON, vocab_size filled in from the
    /// tokenizer) or from these flags.
    func makeConfig(file: String?, vocabSize: Int) throws -> TransformerConfig {
        if let path = file {
            let parsed = try Self.parse(file: path, vocabSize: vocabSize)
            try requireAgreement(with: parsed, source: path)
            return parsed
        }
        let (hidden, heads, layers) = (self.hidden ?? 128, self.heads ?? 4, self.layers ?? 4)
        guard hidden % heads == 0 else { throw CLIError("--hidden \(hidden) must be a multiple of --heads \(heads)") }
        let positions = maxPositions ?? seqLen ?? Self.defaultSequenceLength
        var c: TransformerConfig
        switch architecture ?? "llama" {
        case "gpt2":
            c = .gpt2(vocabSize: vocabSize, hiddenSize: hidden, numLayers: layers, numHeads: heads, maxPositions: positions)
            if let ffn { c.intermediateSize = ffn }
            if let kvHeads, kvHeads != heads { throw CLIError("--kv-heads: gpt2 has no grouped-query attention (got \(kvHeads), --heads \(heads))") }
        default:
            c = .llama(vocabSize: vocabSize, hiddenSize: hidden, numLayers: layers, numHeads: heads, numKVHeads: kvHeads,
                       intermediateSize: ffn ?? 4 * hidden, maxPositions: positions)
        }
        do { try c.validate() } catch { throw CLIError("model flags: \(error)") }
        return c
    }

    /// Parses a --config JSON file; a missing vocab_size is taken from the tokenizer.
    static func parse(file path: String, vocabSize: Int) throws -> TransformerConfig {
        guard let bytes = FileManager.default.contents(atPath: path),
              var object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any] else {
            throw DataError("\(path): not a JSON object")
        }
        if object["vocab_size"] == nil { object["vocab_size"] = vocabSize }
        let json = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        let parsed: TransformerConfig
        do { parsed = try TransformerConfig.parse(json: json) } catch { throw DataError("\(path): \(error)") }
        guard parsed.vocabSize >= vocabSize else {
            throw DataError("\(path): vocab_size \(parsed.vocabSize) is smaller than the tokenizer's \(vocabSize)")
        }
        return parsed
    }
}
