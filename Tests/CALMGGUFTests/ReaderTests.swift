import CALMGGUF
import CALMTensor
import Foundation
import Testing

@Suite("GGUF reader")
struct ReaderTests {
    @Test func everyMetadataValueTypeIsRead() throws {
        let file = try GGUFFile.open(Fixtures.path("metadata.gguf"))
        let m = file.metadata
        #expect(file.version == 3)
        #expect(m["test.uint8"] == .uint8(200) && m["test.int8"] == .int8(-100))
        #expect(m["test.uint16"] == .uint16(60000) && m["test.int16"] == .int16(-30000))
        #expect(m["test.uint32"] == .uint32(4_000_000_000) && m["test.int32"] == .int32(-2_000_000_000))
        #expect(m["test.uint64"] == .uint64(1 << 63 + 5) && m["test.int64"] == .int64(-(1 << 62)))
        #expect(m["test.float32"] == .float32(1.5) && m["test.float64"] == .float64(-2.25e-300))
        #expect(m["test.bool"] == .bool(true) && m["test.string"] == .string("héllo ✓"))
        #expect(m["test.array.int32"] == .array(.int32, [.int32(1), .int32(-2), .int32(3)]))
        #expect(m["test.array.string"] == .array(.string, [.string("a"), .string(""), .string("ü")]))
        #expect(m["test.array.nested"] == .array(.array, [.array(.int32, [.int32(1), .int32(2)]), .array(.int32, [.int32(3)])]))
        #expect(m["test.array.float"] == .array(.float32, [.float32(0.5), .float32(-1.25)]))
        #expect(m["test.array.bool"] == .array(.bool, [.bool(true), .bool(false)]))
        #expect(m["test.uint64"]?.int == nil && m["test.int64"]?.int == -(1 << 62))  // 2^63 + 5 does not fit in Int
        #expect(file.metadataKeys.first == "general.architecture")
        let t = try #require(file.tensor("t"))
        #expect(t.dims == [3, 2] && t.shape == [2, 3] && t.type == .f32)
        #expect(try file.floats("t").data == [0, 1, 2, 3, 4, 5])
    }

    @Test func versionTwoReadsLikeThree() throws {
        var bytes = try Fixtures.bytes("metadata.gguf")
        bytes[4] = 2
        let file = try GGUFFile(path: "v2.gguf", bytes: bytes)
        #expect(file.version == 2 && file.metadata["test.string"] == .string("héllo ✓"))
    }

    @Test func emptyArraysAndAlignmentKeysAreRead() throws {
        var b = GGUFBuilder.valid
        b.keys.append(("empty", GGUFBuilder.u32(9) + GGUFBuilder.u32(5) + GGUFBuilder.u64(0)))
        b.alignment = 16
        b.key("general.alignment", uint32: 16)
        b.data = []
        b.tensors = []
        b.f32Tensor("a", dims: [4, 2], values: (0..<8).map(Float.init))
        b.f32Tensor("b", dims: [3], values: [1, 2, 3])
        let file = try GGUFFile(path: "x.gguf", bytes: b.bytes)
        #expect(file.metadata["empty"] == .array(.int32, []) && file.alignment == 16)
        #expect(try file.floats("b").data == [1, 2, 3])
    }

    /// (what to break, the message that must name it)
    static let violations: [(String, @Sendable (inout GGUFBuilder) -> Void, String)] = [
        ("magic", { $0.magic = Array("GGML".utf8) }, "not a GGUF file"),
        ("version 1", { $0.version = 1 }, "GGUF version 1 is not supported"),
        ("version 4", { $0.version = 4 }, "GGUF version 4 is not supported"),
        ("big-endian", { $0.version = UInt32(3).byteSwapped }, "big-endian"),
        ("tensor count", { $0.tensorCount = 1 << 40 }, "tensor count is 1099511627776, more than"),
        ("key count", { $0.keyCount = UInt64.max }, "metadata key count"),
        ("string length", { $0.keys[0].body = GGUFBuilder.u32(8) + GGUFBuilder.u64(1 << 50) }, "byte length of the value of key general.architecture"),
        ("array count", { $0.keys.append(("arr", GGUFBuilder.u32(9) + GGUFBuilder.u32(10) + GGUFBuilder.u64(1 << 40))) }, "element count of the value of key arr"),
        ("value type", { $0.keys.append(("k", GGUFBuilder.u32(13))) }, "metadata key k has unknown value type 13"),
        ("array element type", { $0.keys.append(("k", GGUFBuilder.u32(9) + GGUFBuilder.u32(99) + GGUFBuilder.u64(0))) }, "array of unknown value type 99"),
        ("bool", { $0.keys.append(("k", GGUFBuilder.u32(7) + [2])) }, "bool stored as 2"),
        ("nesting", { b in
            var body = GGUFBuilder.u32(5) + GGUFBuilder.u64(0)
            for _ in 0..<12 { body = GGUFBuilder.u32(9) + GGUFBuilder.u64(1) + body }
            b.keys.append(("deep", GGUFBuilder.u32(9) + body))
        }, "nests arrays more than 8 deep"),
        ("duplicate key", { $0.key("general.architecture", string: "again") }, "metadata key general.architecture appears twice"),
        ("utf-8", { $0.keys.append(("bad", GGUFBuilder.u32(8) + GGUFBuilder.u64(2) + [0xC3, 0x28])) }, "is not valid UTF-8"),
        ("alignment", { $0.key("general.alignment", uint32: 24) }, "general.alignment = 24 is not a uint32 power of two"),
        ("misaligned offset", { $0.tensors[1].offset += 4 }, "tensor b has data offset 36, not a multiple of the alignment 32"),
        ("overlap", { $0.tensors[1].offset = 0 }, "overlaps tensor"),
        ("duplicate tensor", { $0.tensors[1].name = "a" }, "tensor a appears twice"),
        ("unknown type", { $0.tensors[0].type = 99 }, "tensor a has unknown ggml type 99"),
        ("zero dimension", { $0.tensors[0].dims = [4, 0] }, "dimension 1 = 0"),
        ("five dimensions", { $0.tensors[0].dims = [1, 1, 1, 1, 8] }, "has 5 dimensions"),
        ("no dimensions", { $0.tensors[0].dims = [] }, "has 0 dimensions"),
        ("partial block", { $0.tensors[0].type = GGMLType.q8_0.rawValue }, "rows of 4 elements, not a multiple of the 32-element blocks of Q8_0"),
        ("overflow", { $0.tensors[0].dims = [1 << 40, 1 << 40] }, "whose size overflows"),
        ("past the end", { $0.tensors[0].dims = [4, 200] }, "tensor a (F32, [4, 200]) ends at byte 3200"),
    ]

    @Test(arguments: violations.indices)
    func violationsAreNamedOnOneLine(index: Int) throws {
        let (what, breakIt, expected) = Self.violations[index]
        var builder = GGUFBuilder.valid
        #expect(throws: Never.self) { try GGUFFile(path: "x.gguf", bytes: builder.bytes) }
        breakIt(&builder)
        #expect(what.isEmpty == false)
        #expect { try GGUFFile(path: "x.gguf", bytes: builder.bytes) } throws: { error in
            let text = "\(error)"
            let ok = error is GGUFError && text.hasPrefix("x.gguf: ") && text.contains(expected) && !text.contains("\n")
            if !ok { print("\(what): \(text)") }
            return ok
        }
    }

    @Test func truncationIsNamedAtEveryLength() throws {
        let bytes = GGUFBuilder.valid.bytes
        for length in 0..<bytes.count {
            #expect { try GGUFFile(path: "x.gguf", bytes: bytes.prefix(length)) } throws: { error in
                let text = "\(error)"
                return error is GGUFError && text.hasPrefix("x.gguf: ") && !text.contains("\n")
                    && (text.contains("file ends") || text.contains("too short") || text.contains("truncated") || text.contains("more than") || text.contains("past the end"))
            }
        }
    }

    @Test func missingFilesAndUnsupportedTypesAreNamed() throws {
        #expect { try GGUFFile.open("/nonexistent/model.gguf") } throws: { "\($0)" == "/nonexistent/model.gguf: GGUF file does not exist" }
        var b = GGUFBuilder.valid
        b.data = []
        b.tensors = []
        b.tensors.append(("iq", [256], GGMLType.iq4_xs.rawValue, 0))
        b.data = [UInt8](repeating: 0, count: GGMLType.iq4_xs.layout.blockBytes)
        let file = try GGUFFile(path: "x.gguf", bytes: b.bytes)
        #expect { try file.floats("iq") } throws: { "\($0)".contains("tensor iq has type IQ4_XS, which cannot be dequantized (supported: F32, F16, BF16, Q8_0") }
        #expect { try file.floats("nothing") } throws: { "\($0)" == "x.gguf: no tensor named nothing" }
        #expect(file.rawBytes(try #require(file.tensor("iq"))).count == 136)
    }
}
