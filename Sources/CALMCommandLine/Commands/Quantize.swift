import ArgumentParser
import CALMCheckpoint
import CALMModels
import CALMTensor
import Foundation

/// Writes a copy of a model checkpoint whose projection weights are stored quantized.
struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a model checkpoint's projection weights (q8_0, q4_0, q4_1 or bf16).",
        discussion: """
            Every attention (q/k/v/o) and MLP (gate/up/down) weight is stored in the chosen format with \
            ggml's block layout and reference rounding; norms and biases stay float32, and so do the token \
            embedding and the output head unless --embeddings is given. The result loads and runs like any model (frozen: it can serve as an anchor or expert, \
            not be trained). Its content hash differs from the original's, so compositions must be composed \
            again with it. The output is written atomically.
            """)

    @Argument(help: "Float32 model checkpoint (.h5).") var input: String
    @Argument(help: "Output checkpoint (.h5).") var output: String
    @Option(help: "Storage format: \(QuantizationFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var type: String
    @Flag(help: "Also quantize the token embedding and the output head (with tied embeddings they are one matrix).")
    var embeddings = false

    func run() throws {
        guard let format = QuantizationFormat(rawValue: type) else {
            throw CLIError("--type: unknown format \"\(type)\" (known: \(QuantizationFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        if try checkpointKind(input) == "composition" {
            throw CLIError("\(input): is a composition; quantize its anchor and experts, then compose again (bridges stay float32)")
        }
        let checkpoint = try ModelCheckpoint.load(input)
        let result: (model: TransformerLM, summary: QuantizationSummary)
        do { result = try checkpoint.model.quantized(format, embeddings: embeddings) } catch {
            throw CLIError("\(input): \(error)")
        }
        let hash = try ModelCheckpoint.save(model: result.model, tokenizer: checkpoint.tokenizer, to: output)
        func mib(_ model: TransformerLM) -> String {
            String(format: "%.1f MiB", Double(model.weights.reduce(0) { $0 + $1.weight.byteCount }) / 1_048_576)
        }
        var line = "quantized \(result.summary.quantized.count) weights to \(format.rawValue): "
            + "\(mib(checkpoint.model)) -> \(mib(result.model)) of weights; wrote \(output) (content hash \(hash.prefix(12)))"
        if !result.summary.keptFloat.isEmpty {
            line += "; kept float32 (rows not whole \(format.blockSize)-value blocks): \(result.summary.keptFloat.joined(separator: ", "))"
        }
        print(line)
    }
}
