import CALMCheckpoint
import CALMModels
import Foundation
import Testing

@Suite("calm checksums", .serialized)
struct IntegrityCLITests {
    @Test func inspectSaysWhetherAFileHasChecksums() throws {
        let (dir, model) = try CLITests.trained.get()
        let sealed = try CLI.run(["inspect", model])
        #expect(sealed.status == 0, "\(sealed.stderr)")
        #expect(sealed.stdout.contains("checksums:   present (\(CheckpointIntegrity.scheme)), all verified"))
        #expect(sealed.stderr.isEmpty, "\(sealed.stderr)")

        // The same model in the layout written before checksums.
        let legacy = "\(dir)/legacy.h5"
        try writeLegacyCopy(of: model, to: legacy)
        let old = try CLI.run(["inspect", legacy])
        #expect(old.status == 0, "\(old.stderr)")
        #expect(old.stdout.contains("checksums:   none (written before checksums were added"))
        let notes = old.stderr.split(separator: "\n")
        #expect(notes.count == 1 && notes[0].hasPrefix("note: \(legacy) carries no checksums"), "\(old.stderr)")
    }

    @Test func aDamagedTensorIsAnErrorNamingFileAndTensor() throws {
        let (dir, model) = try CLITests.trained.get()
        let embedding = try #require(try ModelCheckpoint.load(model).model.parameters.first { $0.name == "embed.weight" })
        let tensorBytes = embedding.tensor.data.withUnsafeBytes { Data($0) }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: model))
        let range = try #require(bytes.range(of: tensorBytes), "embedding bytes not found in the file")
        bytes[range.lowerBound + tensorBytes.count / 3] ^= 0x10
        let damaged = "\(dir)/damaged-embedding.h5"
        try bytes.write(to: URL(fileURLWithPath: damaged))
        for command in [["forward", "--model", damaged, "--tokens", "1 2", "--output", "\(dir)/never.h5"], ["inspect", damaged]] {
            let result = try CLI.run(command)
            #expect(result.status != 0)
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains(damaged) && lines[0].contains("embed.weight is damaged (checksum mismatch)"),
                    "\(command[0]): \(result.stderr)")
        }
    }
}

/// `model` rewritten in the layout of files written before checksums and stored content hashes.
func writeLegacyCopy(of model: String, to legacy: String) throws {
    let checkpoint = try ModelCheckpoint.load(model)
    let file = try HDF5File.create(legacy, checksums: false)
    try writeCheckpointHeader(file, kind: "model")
    try file.setAttribute("model_type", checkpoint.model.config.architecture)
    try file.setAttribute("config", try checkpoint.model.config.jsonString())
    try file.setAttribute("tokenizer", try checkpoint.tokenizer.serialized())
    try writeTensors(checkpoint.model.parameters, to: file)
    try file.close()
}
