import CALMCheckpoint
import CALMModels
import CALMTensor
import CALMTokenizers
import Foundation
import Testing

/// A damaged checkpoint must fail to load with an error naming the file, or load exactly as the
/// undamaged one did; never load with different weights or metadata.
@Suite("Checkpoint integrity")
struct IntegrityTests {
    let config = TransformerConfig.llama(vocabSize: 12, hiddenSize: 8, numLayers: 2, numHeads: 2, intermediateSize: 16, maxPositions: 16)
    let tokenizer = CharTokenizer(corpus: "abcdefgh")
    let tokens = [1, 5, 2, 7, 3, 0, 11]
    let trainingJSON = "{\"step\": 31337, \"note\": \"resumable state\"}"
    /// Over HDF5's 64 KiB limit for attributes kept in an object header, so it is stored in a
    /// heap HDF5 does not checksum for objects this large: only the metadata checksum covers it.
    let largeJSON = "{\"log\": \"" + String(repeating: "step 1 loss 2.5; ", count: 5000) + "\"}"

    /// What a load yields that a user could observe: logits for fixed tokens and the tokenizer.
    struct Outcome: Equatable {
        var logits: [Float]
        var tokenizerFingerprint: String
    }

    func outcome(loading path: String) throws -> Outcome {
        let checkpoint = try ModelCheckpoint.load(path)
        let logits = withoutGradients { checkpoint.model.forward(TokenBatch(tokens)).logits?.data ?? [] }
        return Outcome(logits: logits, tokenizerFingerprint: checkpoint.tokenizer.fingerprint)
    }

    /// A checksummed checkpoint with a training group, so that group attributes are covered too.
    func saved(largeAttribute: Bool = false) throws -> (dir: String, path: String, model: TransformerLM) {
        let dir = try temporaryDirectory()
        let model = try TransformerLM(config: config, seed: 4)
        let path = "\(dir)/model.h5"
        try ModelCheckpoint.save(model: model, tokenizer: tokenizer, to: path) { file in
            try file.createGroup("training")
            try file.setAttribute("progress", trainingJSON, on: "training")
            try file.writeFloats("training/moments", shape: [3], data: [1, 2, 3])
            if largeAttribute { try file.setAttribute("log", largeJSON, on: "training") }
        }
        return (dir, path, model)
    }

    /// Writes `bytes` with bit `bit` flipped to a new file in `dir` and returns its path.
    func flipped(_ bytes: Data, bit: Int, in dir: String) throws -> String {
        var copy = bytes
        copy[bit / 8] ^= UInt8(1) << UInt8(bit % 8)
        let path = "\(dir)/flip-\(bit).h5"
        try copy.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Loads a damaged copy: an error must be one line naming the file; a success must match
    /// the original exactly and still be checksummed (never silently downgraded to unchecked).
    /// Returns whether the copy loaded.
    @discardableResult
    func expectErrorOrIdentical(_ path: String, original: Outcome, bit: Int) -> Bool {
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let loaded = try outcome(loading: path)
            #expect(loaded == original, "bit \(bit): loaded with different logits or tokenizer")
            #expect((try? HDF5File.open(path).isSealed) == true, "bit \(bit): loaded without checksums")
            return true
        } catch {
            let message = "\(error)"
            #expect(message.contains(path) && !message.contains("\n"), "bit \(bit): \(message)")
            return false
        }
    }

    @Test func randomBitFlipsAnywhereAreReportedOrHarmless() throws {
        // Every bit once when CALM_EXHAUSTIVE_FLIPS is set (minutes; "large" adds a large
        // attribute); otherwise a seeded sample.
        let exhaustive = ProcessInfo.processInfo.environment["CALM_EXHAUSTIVE_FLIPS"]
        let (dir, path, _) = try saved(largeAttribute: exhaustive == "large")
        let original = try outcome(loading: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        var generator = SplitMix64(seed: 20_240_611)
        var bits = exhaustive != nil
            ? Array(0..<(bytes.count * 8))
            : (0..<300).map { _ in Int(generator.next() % UInt64(bytes.count * 8)) }
        // The large attribute's text is only data (see aFlipInALargeAttribute...); its edges,
        // where HDF5's encoding of the attribute sits, stay in.
        if let text = bytes.range(of: Data(largeJSON.utf8)) {
            bits.removeAll { (text.lowerBound + 64..<text.upperBound - 64).contains($0 / 8) }
        }
        var errors = 0
        for bit in bits {
            if !expectErrorOrIdentical(try flipped(bytes, bit: bit, in: dir), original: original, bit: bit) { errors += 1 }
        }
        if exhaustive != nil { print("\(bits.count) single-bit flips of \(bytes.count) bytes: \(errors) errors, \(bits.count - errors) identical loads") }
    }

    @Test func aFlipInTensorDataNamesTheTensor() throws {
        let (dir, path, model) = try saved()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let tensor = try #require(model.parameters.first { $0.name == "layers.1.mlp.up_proj.weight" })
        let data = tensor.tensor.data.withUnsafeBytes { Data($0) }
        let range = try #require(bytes.range(of: data), "tensor bytes not found in the file")
        let damaged = try flipped(bytes, bit: (range.lowerBound + data.count / 2) * 8 + 3, in: dir)
        #expect { try ModelCheckpoint.load(damaged) } throws: { error in
            "\(error)" == "\(damaged): tensor layers.1.mlp.up_proj.weight is damaged (checksum mismatch)"
        }
    }

    @Test func flipsInConfigTokenizerAndTrainingJSONAreReported() throws {
        let (dir, path, model) = try saved()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for json in [try model.config.jsonString(), try tokenizer.serialized(), trainingJSON] {
            let range = try #require(bytes.range(of: Data(json.utf8)), "JSON not found in the file")
            let damaged = try flipped(bytes, bit: (range.lowerBound + json.utf8.count / 2) * 8 + 1, in: dir)
            // HDF5's object header checksum catches these before our metadata checksum would.
            #expect { try ModelCheckpoint.load(damaged) } throws: { error in
                "\(error)".hasPrefix("\(damaged): ") && "\(error)".contains("is damaged")
            }
        }
    }

    @Test func aFlipInALargeAttributeIsCaughtByTheMetadataChecksum() throws {
        let (dir, path, _) = try saved(largeAttribute: true)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let range = try #require(bytes.range(of: Data(largeJSON.utf8)), "JSON not found in the file")
        let damaged = try flipped(bytes, bit: (range.lowerBound + largeJSON.utf8.count / 2) * 8 + 6, in: dir)
        #expect { try ModelCheckpoint.load(damaged) } throws: { error in
            "\(error)" == "\(damaged): metadata attributes are damaged (checksum mismatch)"
        }
    }

    /// A checkpoint in the layout written before checksums: HDF5's oldest formats, contiguous
    /// datasets without checksums, no seal.
    func legacy(_ model: TransformerLM, in dir: String) throws -> String {
        let path = "\(dir)/legacy.h5"
        let file = try HDF5File.create(path, checksums: false)
        try writeCheckpointHeader(file, kind: "model")
        try file.setAttribute("model_type", config.architecture)
        try file.setAttribute("config", try config.jsonString())
        try file.setAttribute("tokenizer", try tokenizer.serialized())
        try writeTensors(model.parameters, to: file)
        try file.createGroup("training")
        try file.setAttribute("progress", trainingJSON, on: "training")
        try file.writeInt64s("training/order", shape: [2, 2], data: [4, 3, 2, 1])
        #expect(throws: CheckpointError.self) { try sealCheckpoint(file) }
        try file.close()
        return path
    }

    @Test func filesWithoutChecksumsStillLoadAndSayso() throws {
        let (dir, path, model) = try saved()
        let old = try legacy(model, in: dir)
        #expect(try HDF5File.open(old).isSealed == false)
        #expect(try HDF5File.open(path).isSealed == true)
        #expect(try outcome(loading: old) == outcome(loading: path))
    }

    @Test func upgradingKeepsEveryTensorAndAttributeAndAddsChecksums() throws {
        let (dir, _, model) = try saved()
        let old = try legacy(model, in: dir)
        let upgraded = "\(dir)/upgraded.h5"
        try upgradeCheckpoint(old, to: upgraded)
        let before = try HDF5File.open(old), after = try HDF5File.open(upgraded)
        #expect(after.isSealed)
        for name in ["format", "kind", "model_type", "config", "tokenizer"] {
            #expect(try after.stringAttribute(name) == before.stringAttribute(name), "\(name)")
        }
        #expect(try after.intAttribute("format_version") == before.intAttribute("format_version"))
        #expect(try after.stringAttribute("progress", of: "training") == trainingJSON)
        #expect(try after.readInt64s("training/order").data == [4, 3, 2, 1])
        for (name, _) in model.parameters {
            let a = try before.readFloats("tensors/\(name)"), b = try after.readFloats("tensors/\(name)")
            #expect(a.shape == b.shape && a.data.map(\.bitPattern) == b.data.map(\.bitPattern), "\(name)")
        }
        #expect(try outcome(loading: upgraded) == outcome(loading: old))
        try upgradeCheckpoint(old)  // in place
        #expect(try HDF5File.open(old).isSealed)
    }

    @Test func anAttributeWrittenAfterSealingMakesTheFileFailToLoad() throws {
        let dir = try temporaryDirectory()
        // A save path that sealed too early: an attribute follows the seal.
        let file = try HDF5File.create("\(dir)/resealed.h5")
        try writeCheckpointHeader(file, kind: "model")
        try sealCheckpoint(file)
        try file.setAttribute("late", "added after the seal")
        try file.close()
        #expect { try HDF5File.open("\(dir)/resealed.h5") } throws: { "\($0)".contains("checksum mismatch") }
    }
}

/// A small seeded generator, so that the sampled bit positions are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
