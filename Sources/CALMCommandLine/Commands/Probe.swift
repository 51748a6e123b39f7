import ArgumentParser
import CALMCheckpoint
import CALMSuites
import Foundation

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Linear-probe a key-value expert: can each block's output at a key tell its value (held-out keys)?")

    @Option(help: "Expert model checkpoint (.h5).") var model: String
    @Option(help: "Its key map (checkpoints/kv/<name>.json).") var map: String
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        let checkpoint = try ModelCheckpoint.load(model)
        guard let data = FileManager.default.contents(atPath: map) else { throw CLIError("\(map): cannot read the file") }
        let keyMap: KVMap
        do { keyMap = try JSONDecoder().decode(KVMap.self, from: data) } catch { throw CLIError("\(map): not a key map") }
        print("probe: value from the expert's block output, trained on \(keyMap.heldIn.count) held-in keys, scored on \(keyMap.keys.count - keyMap.heldIn.count) held-out keys")
        print("block  at the key  after the key")
        for r in KVProbe.run(model: checkpoint.model, tokenizer: checkpoint.tokenizer, map: keyMap) {
            print(String(format: "%5d  %9.1f%%  %12.1f%%", r.layer, 100 * r.atKey, 100 * r.afterKey))
        }
    }
}
