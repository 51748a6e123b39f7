import ArgumentParser
import CALMCheckpoint
import CALMModels

/// Which model a command runs.
struct ModelSource: ParsableArguments {
    @Option(help: "A model checkpoint (.h5).")
    var model: String

    /// The decoder and its tokenizer.
    func load() throws -> (decoder: AnyIncrementalDecoder, tokenizer: any Tokenizer, checkpoint: ModelCheckpoint) {
        let checkpoint = try ModelCheckpoint.load(model)
        return (AnyIncrementalDecoder(checkpoint.model), checkpoint.tokenizer, checkpoint)
    }
}

extension Tokenizer {
    /// Prompt ids as training formatted them: `<bos>` then the text.
    func promptIDs(_ text: String) -> [Int] {
        (bosID.map { [$0] } ?? []) + encode(text)
    }
}
