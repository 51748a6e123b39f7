import CALMGGUF
import CALMHuggingFace
import Foundation
import Testing

/// Every supported ggml type against gguf-py's dequantization (gguf.quants.dequantize), which
/// transformers also uses: the values must be identical bit for bit.
@Suite("GGUF dequantization")
struct DequantizeTests {
    @Test func everyTypeEqualsTheReferenceExactly() throws {
        let file = try GGUFFile.open(Fixtures.path("dequant.gguf"))
        let reference = try SafetensorsFile.open(Fixtures.path("dequant.safetensors"))
        #expect(file.alignment == 64 && file.dataStart % 64 == 0)
        #expect(Set(file.tensors.map(\.type)) == Set(GGMLType.dequantizable))
        #expect(Set(file.tensorNames) == Set(reference.names))
        for tensor in file.tensors {
            let (shape, values) = try file.floats(tensor.name)
            let (expectedShape, expected) = try reference.floats(tensor.name)
            #expect(shape == expectedShape && shape == [2, 256], "\(tensor.name)")
            let mismatches = zip(values, expected).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(mismatches == 0, "\(tensor.name) (\(tensor.type)): \(mismatches) of \(values.count) values differ")
        }
    }

    @Test func rawBlocksStayAccessible() throws {
        let file = try GGUFFile.open(Fixtures.path("dequant.gguf"))
        for tensor in file.tensors {
            let (blockSize, blockBytes) = tensor.type.layout
            let raw = file.rawBytes(tensor)
            #expect(raw.count == tensor.elementCount / blockSize * blockBytes)
            // The same bytes, dequantized directly, give the same values as floats(_:).
            let direct = raw.withUnsafeBytes { Dequantize.floats(tensor.type, from: $0, count: tensor.elementCount) }
            #expect(direct?.map(\.bitPattern) == (try file.floats(tensor.name)).data.map(\.bitPattern), "\(tensor.name)")
        }
    }

    @Test func sizeMismatchesAndUnsupportedTypesGiveNil() {
        let bytes = [UInt8](repeating: 0, count: 34)
        bytes.withUnsafeBytes { raw in
            #expect(Dequantize.floats(.q8_0, from: raw, count: 32)?.count == 32)
            #expect(Dequantize.floats(.q8_0, from: raw, count: 64) == nil)
            #expect(Dequantize.floats(.q8_0, from: raw, count: 33) == nil)
            #expect(Dequantize.floats(.iq4_nl, from: UnsafeRawBufferPointer(rebasing: raw[0..<18]), count: 32) == nil)
        }
    }
}
