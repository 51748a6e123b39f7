import CALMCheckpoint
import CALMHuggingFace
import CALMModels
import CALMTensor
import Foundation
import Testing

@Suite("Safetensors")
struct SafetensorsTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/hf").standardized.path

    @Test func halfAndBFloat16AreWidenedAsPyTorchDoes() throws {
        struct Expected: Decodable { let shape: [Int]; let values: [Float] }
        let expected = try JSONDecoder().decode([String: Expected].self,
                                                from: Data(contentsOf: URL(fileURLWithPath: "\(Self.fixtures)/dtypes.json")))
        let file = try SafetensorsFile.open("\(Self.fixtures)/dtypes.safetensors")
        #expect(file.metadata["format"] == "pt")
        #expect(Set(file.entries.values.map(\.dtype)) == [.f32, .f16, .bf16])
        for (name, e) in expected {
            let (shape, data) = try file.floats(name)
            #expect(shape == e.shape)
            #expect(data.map(\.bitPattern) == e.values.map(\.bitPattern), "\(name)")
        }
    }

    @Test func writerRoundTripsAndAlignsData() throws {
        let dir = try temporaryDirectory()
        let tensors: [(name: String, shape: [Int], data: [Float])] = [
            ("b \"quoted\"", [3], [1, -2, .ulpOfOne]), ("a", [2, 2], [0, -0.0, 3.5, 1e-30]), ("empty", [0, 4], []),
        ]
        try SafetensorsWriter.write(tensors, metadata: ["k": "v"], to: "\(dir)/t.safetensors")
        let file = try SafetensorsFile.open("\(dir)/t.safetensors")
        #expect(file.metadata == ["k": "v"])
        for t in tensors {
            let (shape, data) = try file.floats(t.name)
            #expect(shape == t.shape && data.map(\.bitPattern) == t.data.map(\.bitPattern))
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/t.safetensors"))
        #expect(bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) } % 8 == 0)
    }

    /// A small valid file, built by hand so each rule can be broken on purpose.
    static func file(header: String, data: [UInt8]) -> Data {
        var out = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(header.utf8))
        out.append(contentsOf: data)
        return out
    }

    @Test(arguments: [
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "belong to no tensor"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12 bytes"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "ends at byte 8"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlaps"),
        ("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype Q4"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,4]}}", 4, "shape"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "data_offsets"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8, "overflows"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, "unknown field"),
        ("{\"__metadata__\":{\"a\":1}}", 0, "not a string"),
        ("[1,2]", 0, "not a UTF-8 JSON object"),
        ("{\"a\":", 0, "not valid JSON"),
    ])
    func violationsAreNamed(header: String, dataBytes: Int, expected: String) throws {
        let bytes = Self.file(header: header, data: [UInt8](repeating: 0, count: dataBytes))
        #expect { try SafetensorsFile(path: "x.safetensors", bytes: bytes) } throws: { error in
            "\(error)".hasPrefix("x.safetensors: ") && "\(error)".contains(expected)
        }
    }

    @Test func headerLengthsOutsideTheFileAreRefused() throws {
        var bytes = Self.file(header: "{}", data: [])
        #expect(throws: Never.self) { try SafetensorsFile(path: "ok", bytes: bytes) }
        bytes.replaceSubrange(0..<8, with: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
        #expect { try SafetensorsFile(path: "x", bytes: bytes) } throws: { "\($0)".contains("exceeds") }
        #expect { try SafetensorsFile(path: "x", bytes: Data([1, 2, 3])) } throws: { "\($0)".contains("too short") }
        #expect(throws: SafetensorsError.self) { try SafetensorsFile.open("/nonexistent/model.safetensors") }
    }

    /// Seeded mutations of real files (flipped bytes, truncations, header edits): every result
    /// either validates, with every tensor then readable inside the file, or throws a
    /// SafetensorsError. A crash or out-of-bounds read fails the whole test run.
    @Test func mutatedFilesNeverCrash() throws {
        let originals = try ["dtypes.safetensors", "gpt2/model.safetensors", "llama2/model-00001-of-00005.safetensors"].map {
            try Data(contentsOf: URL(fileURLWithPath: "\(Self.fixtures)/\($0)"))
        }
        var generator = SeededGenerator(seed: 2024)
        var (accepted, rejected) = (0, 0)
        let deadline = Date().addingTimeInterval(10)
        var trials = 0
        while trials < 3000, Date() < deadline {
            trials += 1
            var bytes = originals[Int(generator.next() % UInt64(originals.count))]
            let headerLength = Int(bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
            switch generator.next() % 5 {
            case 0:  // flip bytes anywhere in the first 8 + header bytes
                for _ in 0..<(1 + Int(generator.next() % 4)) {
                    let i = Int(generator.next() % UInt64(min(bytes.count, 8 + headerLength)))
                    bytes[i] ^= UInt8(truncatingIfNeeded: generator.next() | 1)
                }
            case 1:  // truncate
                bytes = bytes.prefix(Int(generator.next() % UInt64(bytes.count)))
            case 2:  // change one digit of the header
                let digits = (8..<(8 + headerLength)).filter { bytes[$0] >= 0x30 && bytes[$0] <= 0x39 }
                if let i = digits.isEmpty ? nil : digits[Int(generator.next() % UInt64(digits.count))] {
                    bytes[i] = 0x30 + UInt8(generator.next() % 10)
                }
            case 3:  // change the header length
                let delta = Int(generator.next() % 17) - 8
                let newLength = UInt64(max(0, headerLength + delta))
                withUnsafeBytes(of: newLength.littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
            default:  // append garbage
                bytes.append(contentsOf: (0..<Int(generator.next() % 9)).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
            }
            do {
                let file = try SafetensorsFile(path: "mutant", bytes: bytes)
                for name in file.names where SafetensorsDType.readable.contains(file.entries[name]!.dtype) {
                    _ = try file.floats(name)
                }
                accepted += 1
            } catch is SafetensorsError {
                rejected += 1
            }
        }
        #expect(rejected > 0 && accepted + rejected == trials)
    }
}
