import CALMCheckpoint
import CALMModels
import Foundation

/// Finds the models a composition references, from any working directory.
///
/// The anchor: `--anchor PATH` if given, else the stored path (relative to the composition's
/// directory), else any registry entry with the anchor's content hash. An expert: by name,
/// then by content hash, in the `--registry` directory if given, then the registry recorded in
/// the composition, then `$CALM_EXPERTS` or `checkpoints/experts`. Every candidate must carry
/// the content hash the composition was trained with; a failure names the composition, the
/// role and every place looked.
public struct ModelResolver {
    /// `--anchor`: use this file for the anchor (its hash must still match).
    public var anchorOverride: String?
    /// `--registry`: searched first.
    public var registryOverride: String?
    /// Models already in memory: a hit with the expected content hash is used as is, and
    /// whatever is loaded is recorded there (one copy per model across compositions).
    public var shared: SharedModels?

    public init(anchorOverride: String? = nil, registryOverride: String? = nil, shared: SharedModels? = nil) {
        self.anchorOverride = anchorOverride
        self.registryOverride = registryOverride
        self.shared = shared
    }

    /// The registries to search for a composition at `compositionPath`, in order, without repeats.
    func registries(_ spec: CompositionSpec, compositionPath: String) -> [ExpertRegistry] {
        var directories: [String] = []
        if let registryOverride { directories.append(registryOverride) }
        if let recorded = spec.registry { directories.append(Self.besideComposition(recorded, compositionPath)) }
        directories.append(ExpertRegistry().directory)
        var seen = Set<String>()
        return directories.filter { seen.insert(URL(fileURLWithPath: $0).standardizedFileURL.path).inserted }
            .map { ExpertRegistry(directory: $0) }
    }

    static func besideComposition(_ reference: String, _ compositionPath: String) -> String {
        if reference.hasPrefix("/") { return reference }
        return URL(fileURLWithPath: compositionPath).deletingLastPathComponent().appendingPathComponent(reference)
            .standardizedFileURL.path
    }

    public func anchor(_ spec: CompositionSpec, compositionPath: String) throws -> LoadedModel<TransformerLM> {
        if let hit = shared?.anchor(withHash: spec.anchor.contentHash) { return hit }
        let loaded = try findAnchor(spec, compositionPath: compositionPath)
        shared?.remember(anchor: loaded)
        return loaded
    }

    public func expert(_ reference: CompositionSpec.AugmentReference, spec: CompositionSpec,
                       compositionPath: String) throws -> LoadedModel<any AugmentModel> {
        if let hit = shared?.expert(withHash: reference.contentHash) { return hit }
        let loaded = try findExpert(reference, spec: spec, compositionPath: compositionPath)
        shared?.remember(expert: loaded)
        return loaded
    }

    func findAnchor(_ spec: CompositionSpec, compositionPath: String) throws -> LoadedModel<TransformerLM> {
        let expected = spec.anchor.contentHash
        var looked: [String] = []
        if let anchorOverride {
            switch try Self.candidate(anchorOverride, expectedHash: expected) {
            case .found(let file, let header): return try Self.loadAnchor(file, header: header)
            case .missing(let why), .differs(let why):
                throw CheckpointError(path: compositionPath, message: "anchor: --anchor \(why)")
            }
        }
        let stored = Self.besideComposition(spec.anchor.path, compositionPath)
        switch try Self.candidate(stored, expectedHash: expected) {
        case .found(let file, let header): return try Self.loadAnchor(file, header: header)
        case .differs(let why):
            throw CheckpointError(path: compositionPath, message: "anchor \(why); give the original with --anchor PATH")
        case .missing(let why): looked.append(why)
        }
        for registry in registries(spec, compositionPath: compositionPath) {
            guard let entry = try registry.entries(withHash: expected).first else {
                looked.append("registry \(registry.directory): no model with content hash \(expected.prefix(12))")
                continue
            }
            if case .found(let file, let header) = try Self.candidate(registry.path(of: entry), expectedHash: expected) {
                return try Self.loadAnchor(file, header: header)
            }
        }
        throw CheckpointError(path: compositionPath, message: "anchor not found (looked at: \(looked.joined(separator: "; "))); give it with --anchor PATH")
    }

    func findExpert(_ reference: CompositionSpec.AugmentReference, spec: CompositionSpec,
                    compositionPath: String) throws -> LoadedModel<any AugmentModel> {
        let expected = reference.contentHash
        var looked: [String] = []
        for registry in registries(spec, compositionPath: compositionPath) {
            let byName = try registry.list().first { $0.name == reference.name }
            let entry = byName?.contentHash == expected ? byName : try registry.entries(withHash: expected).first
            guard let entry else {
                looked.append("registry \(registry.directory): "
                    + (byName == nil ? "no expert named \"\(reference.name)\" or with its content hash"
                                     : "\"\(reference.name)\" has changed since the composition was trained (content hash \(byName!.contentHash.prefix(12)) ≠ \(expected.prefix(12)))"))
                continue
            }
            switch try Self.candidate(registry.path(of: entry), expectedHash: expected) {
            case .found(let file, _):
                defer { try? file.close() }
                return try ArchitectureRegistry.load(file)
            case .missing(let why), .differs(let why): looked.append(why)
            }
        }
        throw CheckpointError(path: compositionPath, message: "expert \(reference.name) not found (looked at: \(looked.joined(separator: "; ")))")
    }

    enum Candidate {
        case found(HDF5File, ModelHeader)
        case missing(String)
        case differs(String)
    }

    /// Opens `path` once and checks its content hash; the open file is handed on for loading.
    static func candidate(_ path: String, expectedHash: String) throws -> Candidate {
        guard FileManager.default.fileExists(atPath: path) else { return .missing("\(path): no such file") }
        let file = try openCheckpoint(path, kind: "model")
        do {
            let header = try ModelHeader.read(file)
            let hash = try header.storedContentHash ?? ArchitectureRegistry.load(file).contentHash
            guard hash == expectedHash else {
                try? file.close()
                return .differs("\(path) has changed since the composition was trained (content hash \(hash.prefix(12)) ≠ \(expectedHash.prefix(12)))")
            }
            return .found(file, header)
        } catch {
            try? file.close()
            throw error
        }
    }

    /// The anchor is always a transformer: it is read as one, never cast.
    static func loadAnchor(_ file: HDF5File, header: ModelHeader) throws -> LoadedModel<TransformerLM> {
        defer { try? file.close() }
        guard TransformerConfig.families.contains(header.modelType) else {
            throw CheckpointError(path: file.path, message: "the anchor must be a transformer (one of \(TransformerConfig.families.joined(separator: ", "))), not \"\(header.modelType)\"")
        }
        let checkpoint = try ModelCheckpoint.read(file, header: header)
        return LoadedModel(model: checkpoint.model, tokenizer: checkpoint.tokenizer, architecture: header.modelType,
                           contentHash: try checkpoint.contentHash(), path: file.path)
    }

    /// Loads an anchor given by path (for `calm compose`).
    public static func anchor(at path: String) throws -> LoadedModel<TransformerLM> {
        let file = try openCheckpoint(path, kind: "model")
        let header: ModelHeader
        do { header = try ModelHeader.read(file) } catch {
            try? file.close()
            throw error
        }
        return try loadAnchor(file, header: header)
    }
}
