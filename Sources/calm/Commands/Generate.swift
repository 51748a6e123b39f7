import ArgumentParser
import CALMModels
import Foundation

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Continue a prompt with a model or a composition.")

    @OptionGroup var source: ModelSource
    @Option(help: "The text to continue.") var prompt: String
    @OptionGroup var sampling: SamplingFlags
    @OptionGroup var runtime: RuntimeOptions
    @Flag(help: "Print load, prompt and per-token timings to standard error.") var stats = false
    @Flag(help: "Keep generating past the end-of-sequence token (fixed-length runs for timing).") var ignoreEOS = false

    func run() throws {
        try runtime.apply()
        let started = DispatchTime.now().uptimeNanoseconds
        let loaded = try source.load()
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let tokenizer = loaded.tokenizer
        let timings = GenerationTimings()
        let ids = try loaded.decoder.generate(prompt: tokenizer.promptIDs(prompt), maxTokens: sampling.maxTokens,
                                              sampling: sampling.options, stopToken: ignoreEOS ? nil : tokenizer.eosID,
                                              timings: timings)
        print(tokenizer.decode(ids))
        if stats {
            let perSecond = timings.decodeSeconds > 0 ? Double(timings.decodeSteps) / timings.decodeSeconds : 0
            FileHandle.standardError.write(Data(String(
                format: "load %.3f s; prompt %d tokens in %.3f s; %d tokens decoded in %.3f s (%.1f tokens/s)\n",
                loadSeconds, timings.promptTokens, timings.prefillSeconds, timings.decodeSteps, timings.decodeSeconds,
                perSecond).utf8))
        }
    }
}
