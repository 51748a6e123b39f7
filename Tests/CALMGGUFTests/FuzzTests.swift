import CALMGGUF
import CALMTensor
import Foundation
import Testing

@Suite("GGUF mutations")
struct FuzzTests {
    /// Values that sit on the edges the reader checks (counts, lengths, type ids, offsets).
    static let edges: [UInt64] = [0, 1, 2, 3, 31, 32, 33, 255, 256, 0x7FFF_FFFF, 0xFFFF_FFFF, 1 << 32, 1 << 40,
                                  UInt64(Int64.max), UInt64(Int64.max) + 1, .max]

    /// Seeded mutations of the fixture files (flipped header bytes, counts and lengths set to
    /// edge values, truncations, appended bytes, damaged tensor data): every mutant either
    /// loads and converts, or throws a one-line GGUFError. A crash, a trap or an out-of-bounds
    /// read fails the whole test run. Bounded to about ten seconds.
    @Test func mutatedFilesLoadOrFailWithOneLine() throws {
        let names = ["llama-q.gguf", "llama-spm.gguf", "gpt2.gguf", "qwen2.gguf", "metadata.gguf", "dequant.gguf"]
        let originals = try names.map { name -> (data: Data, dataStart: Int) in
            let data = try Fixtures.bytes(name)
            return (data, try GGUFFile(path: name, bytes: data).dataStart)
        }
        var generator = SeededGenerator(seed: 7)
        func random(_ n: Int) -> Int { Int(generator.next() % UInt64(max(n, 1))) }
        var (loaded, converted, rejected, trials) = (0, 0, 0, 0)
        var unexpected: [String] = []
        let deadline = Date().addingTimeInterval(10)
        while trials < 4000, Date() < deadline {
            trials += 1
            let pick = random(originals.count)
            var bytes = originals[pick].data
            let header = originals[pick].dataStart
            switch random(6) {
            case 0:  // flip bytes in the header
                for _ in 0...random(4) { bytes[random(header)] ^= UInt8(truncatingIfNeeded: generator.next() | 1) }
            case 1:  // an 8-byte field set to an edge value
                let at = random(header - 8)
                withUnsafeBytes(of: Self.edges[random(Self.edges.count)].littleEndian) { bytes.replaceSubrange(at..<(at + 8), with: $0) }
            case 2:  // a 4-byte field (a type id or a small count) set to an edge value
                let at = random(header - 4)
                withUnsafeBytes(of: UInt32(truncatingIfNeeded: Self.edges[random(Self.edges.count)]).littleEndian) {
                    bytes.replaceSubrange(at..<(at + 4), with: $0)
                }
            case 3:  // truncate
                bytes = bytes.prefix(random(bytes.count))
            case 4:  // append
                bytes.append(contentsOf: (0..<random(64)).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
            default:  // damage tensor data (scales turned into NaN, infinity or huge values)
                for _ in 0...random(8) { bytes[header + random(bytes.count - header)] = [0x7C, 0x7E, 0xFC, 0xFF, 0x00][random(5)] }
            }
            do {
                let file = try GGUFFile(path: "mutant.gguf", bytes: bytes)
                loaded += 1
                for t in file.tensors where t.type.isDequantizable { _ = try file.floats(t.name) }
                if file.metadata["general.architecture"] != nil, file.tensor("token_embd.weight") != nil {
                    _ = try GGUFConverter.load(file: file)
                    converted += 1
                }
            } catch let error as GGUFError {
                rejected += 1
                let text = "\(error)"
                if !text.hasPrefix("mutant.gguf: ") || text.contains("\n") { unexpected.append(text) }
            } catch {
                unexpected.append("\(type(of: error)): \(error)")
            }
        }
        #expect(unexpected.isEmpty, "\(unexpected.prefix(5))")
        #expect(rejected > 0 && loaded > 0 && converted > 0)
        print("GGUF mutations: \(trials) trials, \(loaded) parsed, \(converted) converted, \(rejected) rejected")
    }
}
