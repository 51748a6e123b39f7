import Foundation

/// One tensor's entry in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml order: `dims[0]` is the innermost, contiguous dimension (a row's length).
    public let dims: [Int]
    public let type: GGMLType
    /// Byte range inside the data section, as stored.
    public let range: Range<Int>

    /// The PyTorch-order shape (outermost first): a ggml `[in, out]` matrix is `(out, in)`.
    public var shape: [Int] { dims.reversed() }
    public var elementCount: Int { dims.reduce(1, *) }
}

/// A GGUF file (versions 2 and 3, little-endian), validated before any tensor is read:
///
/// - the magic `GGUF`, a supported version, then tensor and metadata counts that the bytes left
///   in the file could hold;
/// - every metadata key unique and UTF-8, every value of a known type, every string length and
///   array count bounded by the bytes left, arrays nested at most 8 deep;
/// - `general.alignment` (default 32), when present, a uint32 power of two;
/// - every tensor name unique, 1 to 4 dimensions, each positive, a row length that is a whole
///   number of blocks, an element count and byte size without overflow, a known ggml type, an
///   offset that is a multiple of the alignment, its bytes inside the data section (which
///   starts at the first aligned byte after the tensor table), and no two tensors overlapping.
///
/// Any violation throws a `GGUFError` naming the file and the problem. The file is memory
/// mapped, so tensor data is read in place: `rawBytes` gives a tensor's blocks as stored,
/// `floats` dequantizes them.
public struct GGUFFile: Sendable {
    public static let magic: [UInt8] = Array("GGUF".utf8)
    public static let supportedVersions: ClosedRange<UInt32> = 2...3
    public static let defaultAlignment = 32
    public static let maximumDimensions = 4

    public let path: String
    public let version: UInt32
    /// Metadata by key, and the keys in file order.
    public let metadata: [String: GGUFValue]
    public let metadataKeys: [String]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Byte offset of the data section in the file.
    public let dataStart: Int
    private let index: [String: Int]
    private let bytes: Data

    /// Opens (memory-maps) and validates `path`.
    public static func open(_ path: String) throws -> GGUFFile {
        let bytes: Data
        do {
            bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw GGUFError(path: path, "GGUF file \(reason)")
        }
        return try GGUFFile(path: path, bytes: bytes)
    }

    /// Whether the file at `path` starts with the GGUF magic.
    public static func hasMagic(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)).map { Array($0) == magic } ?? false
    }

    /// Validates `bytes` as the contents of a GGUF file called `path`.
    public init(path: String, bytes: Data) throws {
        self.path = path
        self.bytes = bytes
        let parsed = try bytes.withUnsafeBytes { raw in try Self.parse(raw, path: path) }
        version = parsed.version
        metadata = parsed.metadata
        metadataKeys = parsed.keys
        tensors = parsed.tensors
        alignment = parsed.alignment
        dataStart = parsed.dataStart
        index = Dictionary(uniqueKeysWithValues: parsed.tensors.enumerated().map { ($1.name, $0) })
    }

    private struct Parsed {
        var version: UInt32 = 0
        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        var tensors: [GGUFTensorInfo] = []
        var alignment = GGUFFile.defaultAlignment
        var dataStart = 0
    }

    private static func parse(_ raw: UnsafeRawBufferPointer, path: String) throws -> Parsed {
        func fail(_ message: String) -> GGUFError { GGUFError(path: path, message) }
        var cursor = ByteCursor(raw, fail: fail)
        var out = Parsed()
        guard raw.count >= 4 else { throw fail("file is \(raw.count) bytes, too short for the GGUF magic") }
        let magic = Array(raw.prefix(4))
        guard magic == Self.magic else {
            let shown = magic.map { String(format: "%02x", $0) }.joined(separator: " ")
            throw fail("not a GGUF file: it starts with bytes \(shown), not the magic \"GGUF\"")
        }
        _ = try cursor.read(UInt32.self, "the magic")
        let version = try cursor.read(UInt32.self, "the version")
        guard supportedVersions.contains(version) else {
            if supportedVersions.contains(version.byteSwapped) {
                throw fail("big-endian GGUF (version \(version.byteSwapped)) is not supported; convert the model on a little-endian machine")
            }
            throw fail("GGUF version \(version) is not supported (supported: 2, 3)")
        }
        out.version = version
        // A tensor entry takes at least 32 bytes (name length, one dimension, type, offset); a
        // metadata entry at least 13 (key length, type, a one-byte value).
        let tensorCount = try cursor.count("the tensor count", minimumBytes: 32)
        let keyCount = try cursor.count("the metadata key count", minimumBytes: 13)

        out.keys.reserveCapacity(keyCount)
        for i in 0..<keyCount {
            let key = try cursor.string("metadata key \(i)")
            guard !key.isEmpty else { throw fail("metadata key \(i) is empty") }
            guard out.metadata[key] == nil else { throw fail("metadata key \(key) appears twice") }
            let tag = try cursor.read(UInt32.self, "the value type of key \(key)")
            guard let type = GGUFValueType(rawValue: tag) else {
                throw fail("metadata key \(key) has unknown value type \(tag)")
            }
            out.metadata[key] = try cursor.value(type, "the value of key \(key)")
            out.keys.append(key)
        }
        if let a = out.metadata["general.alignment"] {
            guard case .uint32(let v) = a, v > 0, v & (v - 1) == 0 else {
                throw fail("general.alignment = \(a.summary) is not a uint32 power of two")
            }
            out.alignment = Int(v)
        }

        var names = Set<String>()
        out.tensors.reserveCapacity(tensorCount)
        for i in 0..<tensorCount {
            let name = try cursor.string("the name of tensor \(i)")
            guard !name.isEmpty else { throw fail("tensor \(i) has an empty name") }
            guard names.insert(name).inserted else { throw fail("tensor \(name) appears twice") }
            let rank = try cursor.read(UInt32.self, "the dimension count of tensor \(name)")
            guard rank >= 1, rank <= UInt32(maximumDimensions) else {
                throw fail("tensor \(name) has \(rank) dimensions (ggml allows 1 to \(maximumDimensions))")
            }
            var dims: [Int] = []
            for d in 0..<Int(rank) {
                let n = try cursor.read(UInt64.self, "dimension \(d) of tensor \(name)")
                guard n >= 1, n <= UInt64(Int.max) else { throw fail("tensor \(name) has dimension \(d) = \(n), not a positive size") }
                dims.append(Int(n))
            }
            let typeID = try cursor.read(UInt32.self, "the type of tensor \(name)")
            guard let type = GGMLType(rawValue: typeID) else {
                throw fail("tensor \(name) has unknown ggml type \(typeID)")
            }
            let offset = try cursor.read(UInt64.self, "the data offset of tensor \(name)")
            let byteCount = try Self.byteCount(name: name, dims: dims, type: type, fail: fail)
            guard offset <= UInt64(Int.max), Int(offset) % out.alignment == 0 else {
                throw fail("tensor \(name) has data offset \(offset), not a multiple of the alignment \(out.alignment)")
            }
            let (end, overflow) = Int(offset).addingReportingOverflow(byteCount)
            guard !overflow else { throw fail("tensor \(name) ends past any possible file size") }
            out.tensors.append(GGUFTensorInfo(name: name, dims: dims, type: type, range: Int(offset)..<end))
        }

        // The data section starts at the first aligned byte after the tensor table.
        let dataStart = (cursor.position + out.alignment - 1) / out.alignment * out.alignment
        out.dataStart = dataStart
        let dataSize = max(0, raw.count - dataStart)
        if !out.tensors.isEmpty, dataStart > raw.count {
            throw fail("the data section would start at byte \(dataStart), past the end of the \(raw.count)-byte file")
        }
        var previous: GGUFTensorInfo?
        for t in out.tensors.sorted(by: { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }) {
            guard t.range.upperBound <= dataSize else {
                throw fail("tensor \(t.name) (\(t.type), \(t.dims)) ends at byte \(t.range.upperBound) of a \(dataSize)-byte data section (file truncated?)")
            }
            if let p = previous, t.range.lowerBound < p.range.upperBound {
                throw fail("tensor \(t.name) (bytes \(t.range)) overlaps tensor \(p.name) (bytes \(p.range)) in the data section")
            }
            previous = t
        }
        return out
    }

    /// Bytes of a tensor: its row length must be a whole number of blocks, and the size must
    /// not overflow.
    private static func byteCount(name: String, dims: [Int], type: GGMLType, fail: (String) -> GGUFError) throws -> Int {
        let (blockSize, blockBytes) = type.layout
        guard dims[0] % blockSize == 0 else {
            throw fail("tensor \(name) has rows of \(dims[0]) elements, not a multiple of the \(blockSize)-element blocks of \(type)")
        }
        var blocks = dims[0] / blockSize
        for d in dims.dropFirst() {
            let (p, overflow) = blocks.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("tensor \(name) has dimensions \(dims) whose size overflows") }
            blocks = p
        }
        let (bytes, overflow) = blocks.multipliedReportingOverflow(by: blockBytes)
        guard !overflow else { throw fail("tensor \(name) has dimensions \(dims) whose size overflows") }
        return bytes
    }

    /// The tensor called `name`, if any.
    public func tensor(_ name: String) -> GGUFTensorInfo? { index[name].map { tensors[$0] } }

    /// Tensor names in file order.
    public var tensorNames: [String] { tensors.map(\.name) }

    /// The tensor's blocks exactly as stored (a view of the mapped file, not a copy).
    public func rawBytes(_ tensor: GGUFTensorInfo) -> Data {
        let start = bytes.startIndex + dataStart + tensor.range.lowerBound
        return bytes[start..<(start + tensor.range.count)]
    }

    /// Calls `body` with the tensor's stored blocks, in place.
    public func withRawBytes<R>(_ tensor: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[(dataStart + tensor.range.lowerBound)..<(dataStart + tensor.range.upperBound)]))
        }
    }

    /// The tensor `name` dequantized to float32, with its PyTorch-order shape.
    public func floats(_ name: String) throws -> (shape: [Int], data: [Float]) {
        guard let t = tensor(name) else { throw GGUFError(path: path, "no tensor named \(name)") }
        guard t.type.isDequantizable else {
            throw GGUFError(path: path, "tensor \(name) has type \(t.type), which cannot be dequantized (supported: \(GGMLType.dequantizable.map(\.description).joined(separator: ", ")))")
        }
        let data = withRawBytes(t) { Dequantize.floats(t.type, from: $0, count: t.elementCount) }
        guard let data else { throw GGUFError(path: path, "tensor \(name): \(t.type) data does not match its size") }
        return (t.shape, data)
    }
}
