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
/// - String attributes (config, tokenizer, composition JSON) are written fixed-length, inside
///   the checksummed object header, not variable-length in HDF5's global heap, which has no
///   checksum and whose stored lengths HDF5 1.10 trusts (a flipped bit there crashed loads).
///   One over 64 KiB cannot sit in a header: HDF5 moves the object's attributes to a heap that
///   it does not checksum for entries over 4 KiB. `metadata_checksum` on the root, a SHA-256
///   over every string and integer attribute of every group, covers those; `sealCheckpoint`
///   writes it as the last step of a save and `HDF5File.open` verifies it. (HDF5 1.10 decodes
///   such a large entry's header before we can check it, so a flip in those few bytes is the
///   one place left where HDF5 itself could misbehave.)
///
/// Files written before this carry none of it; they still load, with a one-line note, and
/// `upgradeCheckpoint` rewrites them with checksums.
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
            let member = childPath(group, child)
            if try isGroup(member) { try digestAttributes(ofGroup: member, into: &digest) }
        }
    }

    /// Reads every dataset, so that damage anywhere in a sealed file is reported (a load reads
    /// only the tensors it needs; `calm inspect` uses this to vouch for the whole file).
    public func verifyAllDatasets(under group: String = "/") throws {
        for child in try children(of: group).sorted() {
            let member = childPath(group, child)
            if try isGroup(member) {
                try verifyAllDatasets(under: member)
                continue
            }
            switch try elementType(of: member) {
            case .float32: _ = try readFloats(member)
            case .int64: _ = try readInt64s(member)
            case .unsigned(let bytes): _ = try readUnsigned(member, elementSize: bytes)
            case .other: throw HDF5Error(path: path, message: "dataset \(member) has an element type CALM does not write")
            }
        }
    }
}

/// Rewrites a checkpoint with checksums (to `output`, or in place), atomically. Every group,
/// attribute and dataset is copied with identical values: float32 and int64 datasets, string
/// and integer attributes; anything else is refused rather than converted. The copy is read
/// back and compared with the source before it replaces anything. Tensors are copied as
/// stored, so a file damaged before the upgrade stays damaged: check its outputs first.
public func upgradeCheckpoint(_ path: String, to output: String? = nil) throws {
    let source = try HDF5File.open(path)
    defer { try? source.close() }
    try writeAtomically(to: output ?? path) { temporary in
        let target = try HDF5File.create(temporary)
        try copyGroup("/", from: source, to: target)
        try sealCheckpoint(target)
        try target.close()
        let copy = try HDF5File.open(temporary)
        defer { try? copy.close() }
        try requireSameContents("/", source, copy)
    }
}

/// A dataset's values; floats as bit patterns, so that NaN payloads and -0 compare exactly.
private enum DatasetValue: Equatable {
    case float32(shape: [Int], bits: [UInt32])
    case int64(shape: [Int], values: [Int64])

    init(_ file: HDF5File, _ datasetPath: String) throws {
        switch try file.elementType(of: datasetPath) {
        case .float32:
            let (shape, data) = try file.readFloats(datasetPath)
            self = .float32(shape: shape, bits: data.map(\.bitPattern))
        case .int64:
            let (shape, data) = try file.readInt64s(datasetPath)
            self = .int64(shape: shape, values: data)
        case .unsigned, .other:
            throw CheckpointError(path: file.path, message: "cannot upgrade dataset \(datasetPath): only float32 and int64 datasets are copied")
        }
    }

    func write(to file: HDF5File, _ datasetPath: String) throws {
        switch self {
        case let .float32(shape, bits): try file.writeFloats(datasetPath, shape: shape, data: bits.map(Float.init(bitPattern:)))
        case let .int64(shape, values): try file.writeInt64s(datasetPath, shape: shape, data: values)
        }
    }
}

private enum AttributeValue: Equatable {
    case string(String)
    case int(Int)
}

/// The string and integer attributes of an object, leaving out the checksums a checksummed
/// file carries, which the upgrade writes afresh.
private func attributes(of objectPath: String, in file: HDF5File) throws -> [String: AttributeValue] {
    let checksums = objectPath == "/" ? [CheckpointIntegrity.sealAttribute, CheckpointIntegrity.schemeAttribute]
                                      : [HDF5File.checksumAttribute]
    var values: [String: AttributeValue] = [:]
    for name in try file.attributeNames(of: objectPath) where !checksums.contains(name) {
        switch try file.attributeClass(name, of: objectPath) {
        case H5T_STRING: values[name] = .string(try file.stringAttribute(name, of: objectPath) ?? "")
        case H5T_INTEGER: values[name] = .int(try file.intAttribute(name, of: objectPath) ?? 0)
        default:
            throw CheckpointError(path: file.path, message: "cannot upgrade attribute \(name) of \(objectPath): only string and integer attributes are copied")
        }
    }
    return values
}

private func setAttributes(_ values: [String: AttributeValue], on objectPath: String, in file: HDF5File) throws {
    for (name, value) in values.sorted(by: { $0.key < $1.key }) {
        switch value {
        case let .string(text): try file.setAttribute(name, text, on: objectPath)
        case let .int(number): try file.setAttribute(name, number, on: objectPath)
        }
    }
}

private func childPath(_ group: String, _ child: String) -> String { group == "/" ? "/\(child)" : "\(group)/\(child)" }

private func copyGroup(_ group: String, from source: HDF5File, to target: HDF5File) throws {
    try setAttributes(try attributes(of: group, in: source), on: group, in: target)
    for child in try source.children(of: group) {
        let path = childPath(group, child)
        if try source.isGroup(path) {
            try target.createGroup(path)
            try copyGroup(path, from: source, to: target)
        } else {
            try DatasetValue(source, path).write(to: target, path)
            try setAttributes(try attributes(of: path, in: source), on: path, in: target)
        }
    }
}

private func requireSameContents(_ group: String, _ source: HDF5File, _ copy: HDF5File) throws {
    func differs(_ what: String) -> CheckpointError {
        CheckpointError(path: source.path, message: "upgrade aborted: the rewritten file differs in \(what)")
    }
    guard try attributes(of: group, in: source) == attributes(of: group, in: copy) else { throw differs("the attributes of \(group)") }
    let children = try source.children(of: group)
    guard try copy.children(of: group) == children else { throw differs("the members of \(group)") }
    for child in children {
        let path = childPath(group, child)
        if try source.isGroup(path) {
            try requireSameContents(path, source, copy)
        } else {
            guard try DatasetValue(source, path) == DatasetValue(copy, path),
                  try attributes(of: path, in: source) == attributes(of: path, in: copy) else { throw differs(path) }
        }
    }
}
