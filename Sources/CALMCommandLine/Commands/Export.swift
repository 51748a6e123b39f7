import ArgumentParser
import CALMCheckpoint
import CALMComposition
import CALMHuggingFace
import Foundation

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint back out: a model as a Hugging Face directory, a composition as safetensors + JSON.",
        discussion: """
            For a model checkpoint OUTDIR receives model.safetensors and config.json (loadable with \
            transformers' from_pretrained), plus tokenizer.json and tokenizer_config.json when the \
            tokenizer came from a Hugging Face tokenizer.json. For a composition it receives \
            composition.safetensors (the bridge weights) and composition.json (anchor, augments with \
            content hashes, connections, bridge settings).
            """)

    @Argument(help: "A model or composition checkpoint (.h5).") var file: String
    @Argument(help: "Output directory (created if needed; files in it are replaced atomically).") var outputDirectory: String
    @OptionGroup var lookup: LookupOptions

    func run() throws {
        try OutputPath.validate(outputDirectory, option: "<output-directory>", kind: .directory)
        let kind = try checkpointKind(file)
        if kind == "composition" {
            let files = try CompositionExport.export(file, resolver: lookup.resolver, to: outputDirectory)
            print("exported composition \(file) -> \(outputDirectory): \(files.joined(separator: ", "))")
        } else {
            let result = try HuggingFaceExporter.export(try ModelCheckpoint.load(file), to: outputDirectory)
            print("exported \(file) -> \(outputDirectory): \(result.files.joined(separator: ", "))")
            if let note = result.tokenizerNote { print("note: \(note)") }
        }
    }
}
