import ArgumentParser
import CALMComposition

/// Where a stored composition's anchor and experts are looked for (see `ModelResolver`).
struct LookupOptions: ParsableArguments {
    @OptionGroup var registry: RegistryOptions

    @Option(help: ArgumentHelp("For a composition: the anchor checkpoint, when it is no longer at its stored path.", valueName: "path"))
    var anchor: String?

    var resolver: ModelResolver { ModelResolver(anchorOverride: anchor, registryOverride: registry.registry) }
}
