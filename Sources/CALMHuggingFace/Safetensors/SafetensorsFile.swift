import CALMModels
import CALMSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Element types of the safetensors format. Only the float types can be read as tensors; the
/// others are known so that a file holding them still validates.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"

    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: return 1
        }
    }

    /// The types `SafetensorsFile.floats` widens to float32.
    public static let readable: [SafetensorsDType] = [.f32, .f16, .bf16]
}

/// One tensor's entry in a safetensors header.
public struct SafetensorsEntry: Sendable, Equatable {
    public var name: String
    public var dtype: SafetensorsDType
    public var shape: [Int]
    /// Byte range inside the data section (after the header).
    public var range: Range<Int>
}

/// A malformed or hostile safetensors file, or a request it cannot serve.
public struct SafetensorsError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}

/// A safetensors file, validated against the format's rules before any tensor is read:
///
/// - an 8-byte little-endian header length N with 8 + N within the file (and N at most 100 MB);
/// - a UTF-8 JSON object header mapping names to `{dtype, shape, data_offsets}`, plus an
///   optional `__metadata__` object of strings;
/// - every tensor's `[begin, end)` inside the data section, `end − begin` equal to its element
///   count times its dtype's size, and the ranges tiling the data section with no overlap and
///   no hole.
///
/// Any violation throws a `SafetensorsError` naming the file and the problem; no read ever
/// leaves the file's bytes.
public struct SafetensorsFile: Sendable {
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    /// Entries by name.
    public let entries: [String: SafetensorsEntry]
    public let metadata: [String: String]
    private let bytes: Data
    private let dataStart: Int

    /// Tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// Opens (memory-maps) and validates `path`.
    public static func open(_ path: String) throws -> SafetensorsFile {
        let bytes: Data
        do {
            bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw SafetensorsError(path: path, message: "safetensors file \(reason)")
        }
        return try SafetensorsFile(path: path, bytes: bytes)
    }

    /// Validates `bytes` as the contents of a safetensors file called `path`.
    public init(path: String, bytes: Data) throws {
        func fail(_ message: String) -> SafetensorsError { SafetensorsError(path: path, message: message) }
        self.path = path
        self.bytes = bytes
        guard bytes.count >= 8 else {
            throw fail("file is \(bytes.count) bytes, too short for the 8-byte header length")
        }
        let declared = bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard declared <= UInt64(Self.maxHeaderBytes) else {
            throw fail("header length \(declared) exceeds the format's limit of \(Self.maxHeaderBytes) bytes")
        }
        let headerLength = Int(declared)
        guard headerLength >= 2, 8 + headerLength <= bytes.count else {
            throw fail("header length \(headerLength) does not fit in a file of \(bytes.count) bytes")
        }
        dataStart = 8 + headerLength
        let headerBytes = bytes.subdata(in: (bytes.startIndex + 8)..<(bytes.startIndex + dataStart))
        guard headerBytes.first == UInt8(ascii: "{"), String(data: headerBytes, encoding: .utf8) != nil else {
            throw fail("header is not a UTF-8 JSON object")
        }
        guard case .object(let header)? = JSONValue.parse(headerBytes) else {
            throw fail("header is not valid JSON")
        }
        var metadata: [String: String] = [:]
        var entries: [String: SafetensorsEntry] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let map = value.object else { throw fail("__metadata__ is not an object") }
                for (k, v) in map {
                    guard let s = v.string else { throw fail("__metadata__ value for \"\(k)\" is not a string") }
                    metadata[k] = s
                }
                continue
            }
            entries[name] = try Self.parseEntry(name: name, value: value, fail: fail)
        }
        let dataSize = bytes.count - dataStart
        var cursor = 0
        for entry in entries.values.sorted(by: { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }) {
            guard entry.range.upperBound <= dataSize else {
                throw fail("tensor \(entry.name) ends at byte \(entry.range.upperBound) of a \(dataSize)-byte data section")
            }
            guard entry.range.lowerBound >= cursor else {
                throw fail("tensor \(entry.name) overlaps another tensor at byte \(entry.range.lowerBound)")
            }
            guard entry.range.lowerBound == cursor else {
                throw fail("bytes \(cursor)..<\(entry.range.lowerBound) of the data section belong to no tensor")
            }
            cursor = entry.range.upperBound
        }
        guard cursor == dataSize else {
            throw fail("bytes \(cursor)..<\(dataSize) of the data section belong to no tensor")
        }
        self.entries = entries
        self.metadata = metadata
    }

    private static func parseEntry(name: String, value: JSONValue, fail: (String) -> SafetensorsError) throws -> SafetensorsEntry {
        guard let fields = value.object else { throw fail("entry \(name) is not an object") }
        if let extra = Set(fields.keys).subtracting(["dtype", "shape", "data_offsets"]).sorted().first {
            throw fail("entry \(name) has an unknown field \"\(extra)\"")
        }
        guard let dtypeName = fields["dtype"]?.string else { throw fail("entry \(name) has no dtype string") }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw fail("tensor \(name) has unknown dtype \(dtypeName) (known: \(SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let shape = nonNegativeIntegers(fields["shape"]) else {
            throw fail("tensor \(name) has a shape that is not a list of non-negative integers")
        }
        guard let offsets = nonNegativeIntegers(fields["data_offsets"]), offsets.count == 2, offsets[0] <= offsets[1] else {
            throw fail("tensor \(name) has data_offsets that are not [begin, end] with begin <= end")
        }
        var count = 1
        for d in shape + [dtype.byteSize] {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("tensor \(name) has a shape whose size overflows") }
            count = product
        }
        guard offsets[1] - offsets[0] == count else {
            throw fail("tensor \(name): shape \(shape) of \(dtypeName) needs \(count) bytes but data_offsets span \(offsets[1] - offsets[0])")
        }
        return SafetensorsEntry(name: name, dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
    }

    /// A JSON array of non-negative integers.
    private static func nonNegativeIntegers(_ value: JSONValue?) -> [Int]? {
        guard let array = value?.array else { return nil }
        let out = array.compactMap(\.int)
        return out.count == array.count && out.allSatisfy({ $0 >= 0 }) ? out : nil
    }

    /// The tensor `name` widened to float32, with its shape.
    public func floats(_ name: String) throws -> (shape: [Int], data: [Float]) {
        guard let entry = entries[name] else {
            throw SafetensorsError(path: path, message: "no tensor named \(name)")
        }
        guard SafetensorsDType.readable.contains(entry.dtype) else {
            throw SafetensorsError(path: path, message: "tensor \(name) has dtype \(entry.dtype.rawValue); only \(SafetensorsDType.readable.map(\.rawValue).joined(separator: ", ")) can be read as weights")
        }
        let count = entry.shape.reduce(1, *)
        var out = [Float](repeating: 0, count: count)
        let base = bytes.startIndex + dataStart + entry.range.lowerBound
        bytes.withUnsafeBytes { raw in
            let p = raw.baseAddress! + (base - bytes.startIndex)
            out.withUnsafeMutableBufferPointer { o in
                switch entry.dtype {
                case .f32:
                    for i in 0..<count { o[i] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                case .f16:
                    for i in 0..<count {
                        o[i] = Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
                    }
                case .bf16:
                    for i in 0..<count {
                        o[i] = Float(bitPattern: UInt32(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
                    }
                default:
                    break
                }
            }
            releasePages(p, byteCount: entry.range.count)
        }
        return (entry.shape, out)
    }

    /// Drops the mapped pages of a tensor once it has been read: they are file-backed and
    /// unmodified (read again from the file if touched), and otherwise count as resident beside
    /// the float32 copy, so converting a 538 MB model held both at once.
    private func releasePages(_ start: UnsafeRawPointer, byteCount: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (Int(bitPattern: start) + page - 1) / page * page
        let end = (Int(bitPattern: start) + byteCount) / page * page
        guard page > 0, end > first, let pointer = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(pointer, end - first, MADV_DONTNEED)
    }
}
