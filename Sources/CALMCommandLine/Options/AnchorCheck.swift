import CALMComposition
import Foundation

/// After `experts register` (and `convert --register`): an expert composes only with an
/// anchor that has the same tokenizer, which is easy to get wrong when pretraining one's own
/// expert (the default tokenizer is built from the expert's data). This looks for a model the
/// expert could compose with and warns on stderr when there is none.
///
/// "Anchors it can see", kept simple: the model and composition checkpoints (`*.h5`) directly
/// in the registry directory's parent (for `checkpoints/experts`: `checkpoints/*.h5`) and in
/// `./checkpoints`, and every other registered expert. Only the tokenizer attribute of each
/// file is read, not its weights.
enum AnchorCheck {
    static func warnIfUnmatched(_ entry: ExpertEntry, registeredFrom file: String, registry: ExpertRegistry) {
        let own = URL(fileURLWithPath: file).standardizedFileURL.path
        let parent = URL(fileURLWithPath: registry.directory).standardizedFileURL.deletingLastPathComponent().path
        let places = Array(Set([parent, URL(fileURLWithPath: "checkpoints").standardizedFileURL.path])).sorted()
        for directory in places {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for name in names.sorted() where name.hasSuffix(".h5") {
                let path = URL(fileURLWithPath: directory).appendingPathComponent(name).standardizedFileURL.path
                if path != own, storedTokenizer(in: path)?.fingerprint == entry.tokenizerFingerprint { return }
            }
        }
        let others = ((try? registry.list()) ?? []).filter { $0.name != entry.name }
        if others.contains(where: { $0.tokenizerFingerprint == entry.tokenizerFingerprint }) { return }
        warn("the tokenizer of \"\(entry.name)\" matches no model in \(places.joined(separator: " or ")) and no other "
             + "registered expert; calm compose needs the expert and the anchor to share one tokenizer "
             + "(pretrain the expert with --tokenizer-from ANCHOR.h5)")
    }
}
