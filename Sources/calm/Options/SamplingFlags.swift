import ArgumentParser
import CALMModels

/// Decoding options for `generate`.
struct SamplingFlags: ParsableArguments {
    @Option(help: "Maximum number of new tokens.")
    var maxTokens = 64

    @Option(help: "Sampling temperature; 0 decodes greedily.")
    var temperature: Float = 0

    @Option(help: "Sample only among the k most likely tokens.")
    var topK: Int?

    @Option(help: "Sample only among the most likely tokens whose probabilities add up to p.")
    var topP: Float?

    @Option(help: "Random seed for sampling.")
    var seed: UInt64 = 0

    var options: SamplingOptions {
        SamplingOptions(temperature: temperature, topK: topK, topP: topP, seed: seed)
    }
}
