import ArgumentParser

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Generate synthetic data sets.", subcommands: [KVData.self, KnowledgeData.self])
}
