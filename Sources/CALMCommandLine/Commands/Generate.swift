import ArgumentParser
import CALMModels
import Foundation

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt with a model or a composition.",
        discussion: """
            Generation stops at end-of-sequence, after --max-tokens, or when the model's context is full, \
            whichever comes first; a note on stderr says when the context cut it short.
            """)

    @OptionGroup var source: ModelSource
    @Option(help: "The text to continue (with --chat: the user's message).") var prompt: String
    @Flag(help: "Wrap --prompt as a user message in the tokenizer's chat template and generate the assistant's reply.")
    var chat = false
    @Option(help: "With --chat: a system message before the user's.") var system: String?
    @OptionGroup var sampling: SamplingFlags
    @OptionGroup var runtime: RuntimeOptions
    @Flag(help: "Print load, prompt and per-token timings to standard error.") var stats = false
    @Flag(help: "Keep generating past the end-of-sequence token (fixed-length runs for timing).") var ignoreEOS = false

    /// New tokens when neither --max-tokens nor the model's context bounds the output.
    static let unboundedDefaultTokens = 256

    func run() throws {
        try sampling.checkRanges()
        try sampling.options.validate()
        try runtime.apply()
        let started = DispatchTime.now().uptimeNanoseconds
        let loaded = try source.load()
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let tokenizer = loaded.tokenizer
        tokenizer.warnAboutUnknownPieces(in: [prompt], what: "--prompt")
        guard chat || system == nil else { throw CLIError("--system: only with --chat") }
        let ids: [Int]
        if chat {
            do { ids = try tokenizer.encodeChat(user: prompt, system: system) } catch {
                throw CLIError("--chat: \(source.model ?? source.composition ?? ""): \(error)")
            }
        } else {
            ids = tokenizer.promptIDs(prompt)
        }
        // Room left in the context after the prompt; a request for more is cut to it.
        let room = loaded.maxContext - ids.count
        guard room > 0 else {
            throw CLIError("--prompt: \(ids.count) tokens fill the model's context of \(loaded.maxContext); nothing can follow")
        }
        // A model without a context limit (a recurrent one) would otherwise run until end-of-sequence.
        let budget = min(sampling.maxTokens ?? (loaded.maxContext == .max ? Self.unboundedDefaultTokens : room), room)
        let timings = GenerationTimings()
        let generated = try loaded.decoder.generate(prompt: ids, maxTokens: budget, sampling: sampling.options,
                                                    stopToken: ignoreEOS ? nil : tokenizer.eosID, timings: timings)
        print(tokenizer.decode(generated))
        if stats {
            let perSecond = timings.decodeSeconds > 0 ? Double(timings.decodeSteps) / timings.decodeSeconds : 0
            FileHandle.standardError.write(Data(String(
                format: "load %.3f s; prompt %d tokens in %.3f s; %d tokens decoded in %.3f s (%.1f tokens/s)\n",
                loadSeconds, timings.promptTokens, timings.prefillSeconds, timings.decodeSteps, timings.decodeSeconds,
                perSecond).utf8))
        }
        // Generation stops before appending end-of-sequence, so a full budget means no stop token came.
        if generated.count == room, (sampling.maxTokens ?? .max) > room {
            note("stopped at the model's context limit (\(loaded.maxContext) tokens, \(ids.count) of them the prompt) before end-of-sequence")
        }
    }
}
