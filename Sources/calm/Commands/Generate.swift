import ArgumentParser

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Continue a prompt with a model.")

    @OptionGroup var source: ModelSource
    @Option(help: "The text to continue.") var prompt: String
    @OptionGroup var sampling: SamplingFlags
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        let (decoder, tokenizer, _) = try source.load()
        let ids = try decoder.generate(prompt: tokenizer.promptIDs(prompt), maxTokens: sampling.maxTokens,
                                       sampling: sampling.options, stopToken: tokenizer.eosID)
        print(tokenizer.decode(ids))
    }
}
