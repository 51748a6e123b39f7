import CALMCheckpoint
import CALMModels
import CALMSupport
import Foundation

/// One registered domain expert, as listed in the registry manifest.
public struct ExpertEntry: Codable, Sendable, Equatable {
    public var name: String
    public var domain: String
    public var description: String
    public var architecture: String
    public var tokenizerFingerprint: String
    public var parameterCount: Int
    public var contentHash: String
    /// File name inside the registry directory.
    public var file: String
    public var registeredAt: String

    enum CodingKeys: String, CodingKey {
        case name, domain, description, architecture, file
        case tokenizerFingerprint = "tokenizer_fingerprint", parameterCount = "parameter_count"
        case contentHash = "content_hash", registeredAt = "registered_at"
    }
}

/// A registry problem (unknown name, duplicate, unreadable manifest).
public struct RegistryError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}

/// A directory of domain experts: HDF5 checkpoints plus `experts.json`.
///
/// Registering copies the checkpoint in under a content-addressed file name and then swaps in
/// a new manifest atomically, so a failed registration leaves the registry exactly as it was.
public struct ExpertRegistry {
    public static let defaultDirectory = "checkpoints/experts"
    public static let environmentVariable = "CALM_EXPERTS"
    public static let manifestName = "experts.json"

    public let directory: String

    /// `directory`, else `$CALM_EXPERTS` (when set and not empty), else `checkpoints/experts`.
    public init(directory: String? = nil) {
        let fromEnvironment = ProcessInfo.processInfo.environment[Self.environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
        self.directory = directory ?? fromEnvironment ?? Self.defaultDirectory
    }

    var manifestPath: String { "\(directory)/\(Self.manifestName)" }

    private struct Manifest: Codable {
        var version = 1
        var experts: [ExpertEntry] = []
    }

    private func readManifest() throws -> Manifest {
        guard FileManager.default.fileExists(atPath: manifestPath) else { return Manifest() }
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw RegistryError("\(manifestPath): cannot read the registry manifest")
        }
        do { return try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw RegistryError("\(manifestPath): malformed registry manifest")
        }
    }

    private func writeManifest(_ manifest: Manifest) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try encoder.encode(manifest), to: manifestPath)
    }

    public func list() throws -> [ExpertEntry] { try readManifest().experts.sorted { $0.name < $1.name } }

    public func entry(named name: String) throws -> ExpertEntry {
        let experts = try readManifest().experts
        guard let entry = experts.first(where: { $0.name == name }) else {
            let known = experts.map(\.name).sorted()
            throw RegistryError("no expert named \"\(name)\" in \(directory) (registered: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
        }
        return entry
    }

    public func path(of entry: ExpertEntry) -> String { "\(directory)/\(entry.file)" }

    /// Entries (of any name) whose model has this content hash.
    public func entries(withHash hash: String) throws -> [ExpertEntry] {
        try list().filter { $0.contentHash == hash }
    }

    /// Loads a registered expert and checks it still has the registered content hash (the
    /// hash stored in the file; the tensors themselves are checked by the file's checksums, and
    /// against the hash by `verify`).
    public func load(_ name: String) throws -> (entry: ExpertEntry, model: LoadedModel<any AugmentModel>) {
        let entry = try entry(named: name)
        let loaded = try ArchitectureRegistry.load(path(of: entry))
        guard loaded.contentHash == entry.contentHash else {
            throw RegistryError("expert \"\(name)\": \(path(of: entry)) has changed since it was registered (content hash differs)")
        }
        return (entry, loaded)
    }

    /// Recomputes every tensor's contribution to the content hash of the named experts (all
    /// when empty) and compares it with the registered one; returns one line per expert.
    public func verify(_ names: [String] = []) throws -> [(name: String, ok: Bool, detail: String)] {
        let entries = names.isEmpty ? try list() : try names.map { try entry(named: $0) }
        return try entries.map { entry in
            let loaded = try ArchitectureRegistry.load(path(of: entry))
            let recomputed = try ArchitectureRegistry.recomputedHash(loaded)
            let ok = recomputed == entry.contentHash && loaded.contentHash == entry.contentHash
            return (entry.name, ok, ok ? "content hash \(recomputed.prefix(12)) matches"
                                       : "content hash \(recomputed.prefix(12)) ≠ registered \(entry.contentHash.prefix(12))")
        }
    }

    static func validateName(_ name: String) throws {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
        guard !name.isEmpty, name.count <= 64, !name.hasPrefix("."), name.unicodeScalars.allSatisfy(allowed.contains) else {
            throw RegistryError("invalid expert name \"\(name)\": use 1-64 letters, digits, '-', '_' or '.' (not starting with '.')")
        }
    }

    /// Validates that `file` loads, copies it into the registry and records it.
    @discardableResult
    public func register(file: String, name: String, domain: String, description: String = "",
                         replace: Bool = false) throws -> ExpertEntry {
        try Self.validateName(name)
        var manifest = try readManifest()
        let existing = manifest.experts.firstIndex { $0.name == name }
        if existing != nil && !replace {
            throw RegistryError("an expert named \"\(name)\" is already registered in \(directory) (use --replace)")
        }
        let loaded = try ArchitectureRegistry.load(file)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fileName = "\(name)-\(loaded.contentHash.prefix(12)).h5"
        let destination = "\(directory)/\(fileName)"
        let copied = !FileManager.default.fileExists(atPath: destination)
        if copied {
            try writeAtomically(to: destination) { temporary in
                try FileManager.default.copyItem(atPath: file, toPath: temporary)
            }
        }
        let entry = ExpertEntry(
            name: name, domain: domain, description: description, architecture: loaded.architecture,
            tokenizerFingerprint: loaded.tokenizer.fingerprint, parameterCount: loaded.model.parameterCount,
            contentHash: loaded.contentHash, file: fileName,
            registeredAt: ISO8601DateFormatter().string(from: Date()))
        var replaced: ExpertEntry?
        if let existing {
            replaced = manifest.experts[existing]
            manifest.experts[existing] = entry
        } else {
            manifest.experts.append(entry)
        }
        do { try writeManifest(manifest) } catch {
            if copied { try? FileManager.default.removeItem(atPath: destination) }
            throw error
        }
        if let replaced, replaced.file != fileName, !manifest.experts.contains(where: { $0.file == replaced.file }) {
            try? FileManager.default.removeItem(atPath: "\(directory)/\(replaced.file)")
        }
        return entry
    }

    /// Removes an expert from the manifest and deletes its checkpoint.
    public func remove(_ name: String) throws {
        var manifest = try readManifest()
        guard let index = manifest.experts.firstIndex(where: { $0.name == name }) else {
            _ = try entry(named: name)  // throws the "no expert named" error with the list
            return
        }
        let removed = manifest.experts.remove(at: index)
        try writeManifest(manifest)
        if !manifest.experts.contains(where: { $0.file == removed.file }) {
            try? FileManager.default.removeItem(atPath: "\(directory)/\(removed.file)")
        }
    }
}
