import ArgumentParser
import CALMModels

/// Decoding options for `generate`.
struct SamplingFlags: ParsableArguments {
    @Option(parsing: .unconditional, help: """
        Maximum number of new tokens (default: until end-of-sequence or the model's context is full, \
        at most 256 for a model without a context limit; a larger value is cut to the room left, with a note).
        """)
    var maxTokens: Int?

    @Option(parsing: .unconditional, help: "Sampling temperature; 0 decodes greedily.")
    var temperature: Float = 0

    @Option(parsing: .unconditional, help: "Sample only among the k most likely tokens.")
    var topK: Int?

    @Option(parsing: .unconditional, help: "Sample only among the most likely tokens whose probabilities add up to p.")
    var topP: Float?

    @Option(help: "Random seed for sampling.")
    var seed: UInt64 = 0

    func checkRanges() throws {
        try OptionCheck.atLeast(maxTokens, 0, "--max-tokens")
        try OptionCheck.finite(temperature, "--temperature")
        try OptionCheck.atLeast(temperature, 0, "--temperature")
        try OptionCheck.atLeast(topK, 1, "--top-k")
        if let topP, !(topP > 0 && topP <= 1) { throw CLIError("--top-p must be in (0, 1], got \(topP)") }
    }

    var options: SamplingOptions {
        SamplingOptions(temperature: temperature, topK: topK, topP: topP, seed: seed)
    }
}
