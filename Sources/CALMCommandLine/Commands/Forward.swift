import ArgumentParser
import CALMCheckpoint
import CALMModels
import CALMSupport
import CALMTensor

struct Forward: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write logits for given token ids or text to an HDF5 file (datasets \"logits\" [T, vocab] and \"tokens\").")

    @OptionGroup var source: ModelSource
    @Option(parsing: .unconditional, help: "Token ids separated by spaces, e.g. \"1 2 3\".") var tokens: String?
    @Option(help: "Text to encode with the model's tokenizer (BOS first when the tokenizer adds one).") var text: String?
    @Option(help: "Output HDF5 file.") var output: String
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        guard (tokens == nil) != (text == nil) else { throw CLIError("give exactly one of --tokens and --text") }
        try OutputPath.validate(output, option: "--output")
        let loaded = try source.load()
        if let text { loaded.tokenizer.warnAboutUnknownPieces(in: [text], what: "--text") }
        let ids = try text.map { loaded.tokenizer.promptIDs($0) } ?? (tokens ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).map { part -> Int in
            guard let id = Int(part) else { throw CLIError("--tokens: \"\(part)\" is not an integer") }
            return id
        }
        guard !ids.isEmpty else { throw CLIError("no tokens to run") }
        let vocab = loaded.vocabularySize
        if let bad = ids.first(where: { $0 < 0 || $0 >= vocab }) {
            throw CLIError("--tokens: id \(bad) is outside the vocabulary of \(vocab)")
        }
        guard ids.count <= loaded.maxContext else {
            throw CLIError("--tokens: \(ids.count) tokens exceed the context of \(loaded.maxContext)")
        }
        let logits = loaded.logits(ids)
        try writeAtomically(to: output) { temporary in
            let file = try HDF5File.create(temporary)
            try file.writeFloats("logits", shape: [ids.count, vocab], data: logits)
            try file.writeInt64s("tokens", shape: [ids.count], data: ids.map(Int64.init))
            try file.close()
        }
    }
}
