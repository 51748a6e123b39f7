import CALMSupport
import CHDF5
import Foundation

/// How checkpoints detect damage. Three layers, so that a flipped bit anywhere in a file is
/// either reported when the file is loaded or changes nothing that is read:
///
/// - HDF5's 1.8 formats (chosen by `HDF5File.create`) checksum the superblock, object headers
///   (links, dataset layouts, fixed-size attribute values), B-trees and fractal heaps; HDF5
///   refuses to read an object whose checksum fails.
/// - Every dataset carries an XXH64 of its bytes (`checksum_xxh64`), checked on every read.
///   HDF5's own Fletcher32 filter read at under a third of the speed of an unfiltered read;
///   XXH64 runs at several times the speed of reading from the page cache.
/// - Variable-length strings (config, tokenizer, composition JSON) live in HDF5's global heap,
///   which has no checksum. `metadata_checksum` on the root, a SHA-256 over every string and
///   integer attribute of every group, covers them. `sealCheckpoint` writes it as the last
///   step of a save; `HDF5File.open` verifies it.
///
/// Files written before this carry none of it; they still load, with a one-line note.
public enum CheckpointIntegrity {
    /// The value of the root `checksums` attribute of a sealed file.
    public static let scheme = "xxh64-datasets+sha256-attributes"
    static let schemeAttribute = "checksums"
    static let sealAttribute = "metadata_checksum"

    /// Paths already noted as carrying no checksums, so each is noted once per process.
    private final class NotedPaths: @unchecked Sendable {
        private let lock = NSLock()
        private var paths: Set<String> = []
        func insert(_ path: String) -> Bool { lock.withLock { paths.insert(path).inserted } }
    }
    private static let noted = NotedPaths()

    /// Prints, once per file, that a checkpoint predates checksums.
    static func noteMissingChecksums(_ path: String) {
        guard noted.insert(path) else { return }
        let line = "note: \(path) carries no checksums (written before checksums were added), so damage to it cannot be detected\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

/// Seals a checkpoint being written: records the checksum scheme and the SHA-256 of every
/// group's attributes. Call it as the last step before `close()`: an attribute written after
/// it makes the file fail to load as damaged.
public func sealCheckpoint(_ file: HDF5File) throws {
    guard file.writesChecksums else {
        throw CheckpointError(path: file.path, message: "cannot seal a file written without dataset checksums")
    }
    try file.setAttribute(CheckpointIntegrity.schemeAttribute, CheckpointIntegrity.scheme)
    try file.setAttribute(CheckpointIntegrity.sealAttribute, try file.attributeDigest())
}

extension HDF5File {
    /// Checks the seal of a file being opened; a file without one predates checksums.
    func verifySeal() throws {
        guard let stored = try stringAttribute(CheckpointIntegrity.sealAttribute) else { return }
        guard try attributeDigest() == stored else {
            throw HDF5Error(path: path, message: "metadata attributes are damaged (checksum mismatch)", isChecksumMismatch: true)
        }
        let scheme = try stringAttribute(CheckpointIntegrity.schemeAttribute)
        guard scheme == CheckpointIntegrity.scheme else {
            throw HDF5Error(path: path, message: "uses checksum scheme \(scheme ?? "(none)"); this build verifies \(CheckpointIntegrity.scheme)")
        }
        isSealed = true
    }

    /// SHA-256 over the string and integer attributes of every group except the seal itself,
    /// in sorted order, each field length-prefixed so no two attribute sets hash alike. Other
    /// attribute types have fixed sizes, so their values sit in object headers, which HDF5
    /// checksums itself; dataset attributes are skipped for the same reason.
    func attributeDigest() throws -> String {
        var digest = ContentDigest()
        try digestAttributes(ofGroup: "/", into: &digest)
        return digest.finalize()
    }

    private func digestAttributes(ofGroup group: String, into digest: inout ContentDigest) throws {
        for name in try attributeNames(of: group) where !(group == "/" && name == CheckpointIntegrity.sealAttribute) {
            let value: String
            switch try attributeClass(name, of: group) {
            case H5T_STRING: value = "s" + (try stringAttribute(name, of: group) ?? "")
            case H5T_INTEGER: value = "i" + String(try intAttribute(name, of: group) ?? 0)
            default: continue
            }
            for field in [group, name, value] {
                digest.update("\(field.utf8.count):")
                digest.update(field)
            }
        }
        for child in try children(of: group).sorted() {
            let childPath = group == "/" ? "/\(child)" : "\(group)/\(child)"
            if try isGroup(childPath) { try digestAttributes(ofGroup: childPath, into: &digest) }
        }
    }

    /// Reads every dataset, so that damage anywhere in a sealed file is reported (a load reads
    /// only the tensors it needs; `calm inspect` uses this to vouch for the whole file).
    public func verifyAllDatasets(under group: String = "/") throws {
        for child in try children(of: group).sorted() {
            let childPath = group == "/" ? "/\(child)" : "\(group)/\(child)"
            if try isGroup(childPath) {
                try verifyAllDatasets(under: childPath)
                continue
            }
            switch try elementType(of: childPath) {
            case .float32: _ = try readFloats(childPath)
            case .int64: _ = try readInt64s(childPath)
            case .other: throw HDF5Error(path: path, message: "dataset \(childPath) has an element type CALM does not write")
            }
        }
    }
}

/// Rewrites a checkpoint with checksums (to `output`, or in place), atomically. Every group,
/// attribute and dataset is copied with identical values: float32 and int64 datasets, string
/// and integer attributes; anything else is refused rather than converted. Tensors are read
/// as stored, so a file damaged before the upgrade stays damaged: compare its outputs first.
public func upgradeCheckpoint(_ path: String, to output: String? = nil) throws {
    let source = try HDF5File.open(path)
    defer { try? source.close() }
    try writeAtomically(to: output ?? path) { temporary in
        let target = try HDF5File.create(temporary)
        try copyGroup("/", from: source, to: target)
        try sealCheckpoint(target)
        try target.close()
    }
}

private func copyGroup(_ group: String, from source: HDF5File, to target: HDF5File) throws {
    try copyAttributes(of: group, from: source, to: target)
    for child in try source.children(of: group) {
        let childPath = group == "/" ? "/\(child)" : "\(group)/\(child)"
        if try source.isGroup(childPath) {
            try target.createGroup(childPath)
            try copyGroup(childPath, from: source, to: target)
            continue
        }
        switch try source.elementType(of: childPath) {
        case .float32:
            let (shape, data) = try source.readFloats(childPath)
            try target.writeFloats(childPath, shape: shape, data: data)
        case .int64:
            let (shape, data) = try source.readInt64s(childPath)
            try target.writeInt64s(childPath, shape: shape, data: data)
        case .other:
            throw CheckpointError(path: source.path, message: "cannot upgrade dataset \(childPath): only float32 and int64 datasets are copied")
        }
        try copyAttributes(of: childPath, from: source, to: target)
    }
}

/// Copies string and integer attributes, leaving out the checksums the target writes itself.
private func copyAttributes(of objectPath: String, from source: HDF5File, to target: HDF5File) throws {
    let ownChecksums = objectPath == "/" ? [CheckpointIntegrity.sealAttribute, CheckpointIntegrity.schemeAttribute]
                                         : [HDF5File.checksumAttribute]
    for name in try source.attributeNames(of: objectPath) where !ownChecksums.contains(name) {
        switch try source.attributeClass(name, of: objectPath) {
        case H5T_STRING:
            try target.setAttribute(name, try source.stringAttribute(name, of: objectPath) ?? "", on: objectPath)
        case H5T_INTEGER:
            try target.setAttribute(name, try source.intAttribute(name, of: objectPath) ?? 0, on: objectPath)
        default:
            throw CheckpointError(path: source.path, message: "cannot upgrade attribute \(name) of \(objectPath): only string and integer attributes are copied")
        }
    }
}
