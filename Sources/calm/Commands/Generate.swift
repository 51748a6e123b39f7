import ArgumentParser

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Continue a prompt with a model or a composition.")

    @OptionGroup var source: ModelSource
    @Option(help: "The text to continue.") var prompt: String
    @OptionGroup var sampling: SamplingFlags
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        let loaded = try source.load()
        let tokenizer = loaded.tokenizer
        let ids = try loaded.decoder.generate(prompt: tokenizer.promptIDs(prompt), maxTokens: sampling.maxTokens,
                                              sampling: sampling.options, stopToken: tokenizer.eosID)
        print(tokenizer.decode(ids))
    }
}
