import ArgumentParser
import CALMModels
import CALMTensor
import Foundation

/// `calm bench --model FILE | --composition FILE`: what a user of a local model compares with
/// llama.cpp — load time, prefill and decoding speed, peak memory.
struct CheckpointBenchOptions: ParsableArguments {
    @Option(help: "Benchmark this model checkpoint instead of the shape sets.") var model: String?
    @Option(help: "Benchmark this composition checkpoint (with its anchor and experts).") var composition: String?
    @OptionGroup var lookup: LookupOptions
    @Option(parsing: .unconditional, help: "With --model/--composition: prompt tokens fed at once (prefill).") var promptTokens = 512
    @Option(parsing: .unconditional, help: "With --model/--composition: tokens decoded one at a time after the prompt.")
    var newTokens = 128

    var isRequested: Bool { model != nil || composition != nil }

    func run(json: Bool) throws {
        guard model == nil || composition == nil else { throw CLIError("give one of --model and --composition") }
        try OptionCheck.atLeast(promptTokens, 1, "--prompt-tokens")
        try OptionCheck.atLeast(newTokens, 1, "--new-tokens")
        let started = Date()
        let loaded = try ModelSource.load(model: model, composition: composition, resolver: lookup.resolver)
        let loadSeconds = Date().timeIntervalSince(started)
        let decoder = loaded.decoder
        let capacity = promptTokens + newTokens
        guard capacity <= decoder.maxContext else {
            throw CLIError("--prompt-tokens + --new-tokens: \(capacity) exceeds the model's context of \(decoder.maxContext)")
        }
        // Token ids spread over the vocabulary (content does not change the work).
        let prompt = (0..<promptTokens).map { 1 + ($0 * 7919) % (decoder.vocabularySize - 1) }
        let (prefillSeconds, decodeSeconds) = withoutGradients { () -> (Double, Double) in
            let state = decoder.startDecoding(capacity: capacity)
            var clock = Date()
            var logits = decoder.feed(prompt, state: state)
            let prefill = Date().timeIntervalSince(clock)
            clock = Date()
            for _ in 0..<newTokens { logits = decoder.feed([Sampler.argmax(logits)], state: state) }
            return (prefill, Date().timeIntervalSince(clock))
        }
        let report: [(String, Double)] = [
            ("load_s", loadSeconds), ("prefill_tokens_per_s", Double(promptTokens) / prefillSeconds),
            ("decode_tokens_per_s", Double(newTokens) / decodeSeconds), ("peak_rss_mb", Bench.peakResidentMegabytes()),
        ]
        if json {
            print("{" + report.map { "\"\($0.0)\": \(String(format: "%.3f", $0.1))" }.joined(separator: ", ") + "}")
        } else {
            print("calm bench \(composition ?? model ?? "") (\(promptTokens)-token prefill, \(newTokens) new tokens)")
            for (k, v) in report { print("  \(k.padding(toLength: 22, withPad: " ", startingAt: 0)) \(String(format: "%.2f", v))") }
        }
    }
}
