import ArgumentParser
import CALMComposition

/// Where the expert registry lives.
struct RegistryOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Expert registry directory (default: $CALM_EXPERTS, else checkpoints/experts).", valueName: "dir"))
    var registry: String?

    var expertRegistry: ExpertRegistry { ExpertRegistry(directory: registry) }
}
