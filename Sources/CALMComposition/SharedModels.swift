import CALMModels
import CALMTokenizers

/// Models already in memory, by content hash, so that several compositions (and plain models)
/// naming the same anchor or expert hold one copy of its weights. `ModelResolver` consults it
/// before looking anywhere and records what it loads (a server loading many compositions).
public final class SharedModels {
    private var anchors: [String: LoadedModel<TransformerLM>] = [:]
    private var experts: [String: LoadedModel<any AugmentModel>] = [:]

    public init() {}

    /// A transformer already loaded with this content hash (as an anchor or a plain model).
    func anchor(withHash hash: String) -> LoadedModel<TransformerLM>? { anchors[hash] }

    /// An expert already loaded with this content hash; a transformer loaded as an anchor or a
    /// plain model serves as well.
    func expert(withHash hash: String) -> LoadedModel<any AugmentModel>? {
        if let hit = experts[hash] { return hit }
        guard let anchor = anchors[hash] else { return nil }
        return LoadedModel(model: anchor.model, tokenizer: anchor.tokenizer, architecture: anchor.architecture,
                           contentHash: anchor.contentHash, path: anchor.path)
    }

    func remember(anchor loaded: LoadedModel<TransformerLM>) { anchors[loaded.contentHash] = loaded }

    /// Records a plain model loaded by path (a server serving it), so compositions anchored on
    /// the same weights use this copy.
    public func remember(model: TransformerLM, tokenizer: any Tokenizer, contentHash: String, path: String) {
        remember(anchor: LoadedModel(model: model, tokenizer: tokenizer, architecture: model.config.architecture,
                                     contentHash: contentHash, path: path))
    }

    func remember(expert loaded: LoadedModel<any AugmentModel>) { experts[loaded.contentHash] = loaded }

    /// Every distinct model held, once each (a transformer also loaded as an expert is listed once).
    public var resident: [(path: String, contentHash: String, weightBytes: Int)] {
        var seen = Set<String>()
        var out: [(path: String, contentHash: String, weightBytes: Int)] = []
        for (hash, m) in anchors.sorted(by: { $0.key < $1.key }) where seen.insert(hash).inserted {
            out.append((m.path, hash, m.model.weightBytes))
        }
        for (hash, m) in experts.sorted(by: { $0.key < $1.key }) where seen.insert(hash).inserted {
            out.append((m.path, hash, m.model.weightBytes))
        }
        return out
    }
}
