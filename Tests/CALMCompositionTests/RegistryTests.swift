import CALMCheckpoint
import CALMComposition
import CALMHuggingFace
import CALMModels
import CALMTensor
import CALMTokenizers
import Foundation
import Testing

@Suite("Expert and architecture registries")
struct RegistryTests {
    func savedModel(_ dir: String, _ name: String, seed: UInt64 = 1, tokenizer: CharTokenizer = sharedTokenizer) throws -> String {
        let path = "\(dir)/\(name).h5"
        try ModelCheckpoint.save(model: try tinyLM(width: 16, layers: 2, heads: 2, seed: seed), tokenizer: tokenizer, to: path)
        return path
    }

    func snapshot(_ dir: String) throws -> [String: Data] {
        guard FileManager.default.fileExists(atPath: dir) else { return [:] }
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name)"))
        }
        return out
    }

    @Test func registerListShowRemove() throws {
        let dir = try makeTemporaryDirectory()
        let registry = ExpertRegistry(directory: "\(dir)/experts")
        let file = try savedModel(dir, "expert")
        let entry = try registry.register(file: file, name: "kv", domain: "kv-arithmetic", description: "key values")
        #expect(entry.architecture == "llama")
        #expect(entry.parameterCount == (try tinyLM(width: 16, layers: 2, heads: 2)).parameterCount)
        #expect(entry.tokenizerFingerprint == sharedTokenizer.fingerprint)
        #expect(try registry.list().map(\.name) == ["kv"])
        #expect(try registry.entry(named: "kv") == entry)
        let (_, loaded) = try registry.load("kv")
        #expect(loaded.contentHash == entry.contentHash)
        try registry.remove("kv")
        #expect(try registry.list().isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/experts") == [ExpertRegistry.manifestName])
    }

    @Test func failedRegistrationsLeaveTheRegistryExactlyAsItWas() throws {
        let dir = try makeTemporaryDirectory()
        let registry = ExpertRegistry(directory: "\(dir)/experts")
        try registry.register(file: try savedModel(dir, "first"), name: "first", domain: "d")
        let before = try snapshot("\(dir)/experts")

        let corrupt = "\(dir)/corrupt.h5"
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: corrupt))
        let cases: [(file: String, name: String, message: String)] = [
            ("\(dir)/absent.h5", "x", "no such file"),
            (corrupt, "x", "not an HDF5 file"),
            (try savedModel(dir, "second", seed: 2), "first", "already registered"),
            (try savedModel(dir, "third", seed: 3), "../escape", "invalid expert name"),
        ]
        for c in cases {
            #expect { try registry.register(file: c.file, name: c.name, domain: "d") } throws: { error in
                "\(error)".contains(c.message) && !"\(error)".contains("\n")
            }
            #expect(try snapshot("\(dir)/experts") == before)
        }
        #expect { try registry.remove("nobody") } throws: { "\($0)".contains("registered: first") }

        // --replace swaps the entry and drops the old file.
        try registry.register(file: "\(dir)/second.h5", name: "first", domain: "d", replace: true)
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/experts").filter { $0.hasSuffix(".h5") }
        #expect(files.count == 1)
        #expect(try registry.entry(named: "first").contentHash != before.keys.first)
    }

    @Test func unknownArchitectureListsTheKnownOnes() throws {
        let dir = try makeTemporaryDirectory()
        let path = try savedModel(dir, "m")
        let edited = "\(dir)/mamba.h5"
        try FileManager.default.copyItem(atPath: path, toPath: edited)
        // Rewrite model_type in place through a fresh file with the same content.
        let source = try ModelCheckpoint.load(path)
        try ModelCheckpoint.save(model: source.model, tokenizer: source.tokenizer, to: edited) { file in
            try file.setAttribute("model_type", "mamba")
        }
        #expect { try ArchitectureRegistry.load(edited) } throws: { error in
            let m = "\(error)"
            return m.contains("unknown architecture \"mamba\"") && m.contains("llama") && m.contains("gpt2")
        }
        #expect { try ExpertRegistry(directory: "\(dir)/r").register(file: edited, name: "m", domain: "d") } throws: { _ in true }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/r/\(ExpertRegistry.manifestName)"))
    }

    @Test func compositionRefusesAnExpertThatChanged() throws {
        let dir = try makeTemporaryDirectory()
        let registry = ExpertRegistry(directory: "\(dir)/experts")
        try registry.register(file: try savedModel(dir, "expert", seed: 2), name: "e", domain: "d")
        let anchorPath = "\(dir)/anchor.h5"
        try ModelCheckpoint.save(model: try tinyLM(seed: 1), tokenizer: sharedTokenizer, to: anchorPath)
        let anchor = try ArchitectureRegistry.load(anchorPath)
        let (entry, expert) = try registry.load("e")
        let connections = [Connection(anchorLayer: 3, augmentLayer: 1)]
        let model = try ComposedModel(anchor: try ModelCheckpoint.load(anchorPath).model, augments: [("e", expert.model, connections)])
        randomizeOutputs(model)
        let spec = CompositionSpec(
            anchor: .init(path: "anchor.h5", contentHash: anchor.contentHash, architecture: "llama"),
            augments: [.init(name: "e", contentHash: entry.contentHash, architecture: "llama", connections: connections)],
            heads: model.heads, seed: 0)
        let compPath = "\(dir)/comp.h5"
        try CompositionCheckpoint.save(model, spec: spec, tokenizer: sharedTokenizer, to: compPath)

        let reloaded = try CompositionCheckpoint.load(compPath, resolver: ModelResolver(registryOverride: registry.directory))
        #expect(reloaded.model.parameters.map(\.tensor.data) == model.parameters.map(\.tensor.data))
        let tokens = TokenBatch([1, 5, 6, 7])
        #expect(withoutGradients { reloaded.model.forward(tokens).data } == withoutGradients { model.forward(tokens).data })

        try registry.register(file: try savedModel(dir, "other", seed: 9), name: "e", domain: "d", replace: true)
        #expect { try CompositionCheckpoint.load(compPath, resolver: ModelResolver(registryOverride: registry.directory)) } throws: { "\($0)".contains("has changed") }
        try ModelCheckpoint.save(model: try tinyLM(seed: 4), tokenizer: sharedTokenizer, to: anchorPath)
        #expect { try CompositionCheckpoint.load(compPath, resolver: ModelResolver(registryOverride: registry.directory)) } throws: { "\($0)".contains("anchor") && "\($0)".contains("has changed") }
        try FileManager.default.removeItem(atPath: anchorPath)
        #expect { try CompositionCheckpoint.load(compPath, resolver: ModelResolver(registryOverride: registry.directory)) } throws: { "\($0)".contains("no such file") }
    }
}

@Suite("one list of model families")
struct ModelFamilyTests {
    /// Every family conversion produces is served by the registry's transformer runtime, and
    /// the transformer configuration accepts exactly those families.
    @Test func conversionAndCompositionAgree() {
        let converted = Set(HuggingFaceArchitectures.all.keys)
        #expect(converted == Set(TransformerConfig.families))
        for family in converted {
            #expect(ArchitectureRegistry.runtime(serving: family)?.name == "transformer", "\(family)")
        }
        #expect(ArchitectureRegistry.runtime(serving: "mamba") == nil)
    }
}
