import CALMModels
import CALMSupport
import CALMTensor
import CALMTokenizers
import Foundation
import Testing

@Suite("Configuration, tokenizer, optimizer")
struct ComponentTests {
    @Test func configRoundTripsAndRejectsUnknownKeys() throws {
        let config = TransformerConfig.llama(vocabSize: 10, hiddenSize: 8, numLayers: 1, numHeads: 2, intermediateSize: 16)
        #expect(try TransformerConfig.parse(json: config.jsonString()) == config)
        var object = try JSONSerialization.jsonObject(with: Data(config.jsonString().utf8)) as! [String: Any]
        object["rope_scalling"] = 2
        let json = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        #expect { try TransformerConfig.parse(json: json) } throws: { "\($0)".contains("rope_scalling") }
        #expect { try TransformerConfig.parse(json: "{\"architecture\": \"llama\"}") } throws: { "\($0)".contains("is missing") }
        var bad = config
        bad.numKVHeads = 3
        #expect(throws: ConfigError.self) { try bad.validate() }
    }

    @Test func parameterCountMatchesTheModel() throws {
        for config in [TransformerConfig.llama(vocabSize: 11, hiddenSize: 8, numLayers: 2, numHeads: 2, numKVHeads: 1, intermediateSize: 12, qkvBias: true),
                       .gpt2(vocabSize: 11, hiddenSize: 8, numLayers: 2, numHeads: 2, maxPositions: 16)] {
            #expect(try TransformerLM(config: config, seed: 0).parameterCount == config.parameterCount)
        }
    }

    @Test func charTokenizerRoundTrips() throws {
        let tokenizer = CharTokenizer(corpus: "abc + de = 12")
        let text = "de + abc = 21"
        #expect(tokenizer.decode(tokenizer.encode(text)) == text)
        #expect(tokenizer.encode("z") == [tokenizer.unknownID])
        let restored = try TokenizerRegistry.load(json: tokenizer.serialized())
        #expect(restored.fingerprint == tokenizer.fingerprint)
        #expect(restored.encode(text) == tokenizer.encode(text))
        #expect(CharTokenizer(corpus: "xyz").fingerprint != tokenizer.fingerprint)
        #expect { try TokenizerRegistry.load(json: "{\"type\": \"wordpiece\"}") } throws: { "\($0)".contains("known: char") }
    }

    @Test func contentDigestIsSHA256() {
        #expect(ContentDigest.hex(of: Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(ContentDigest.hex(of: Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array(String(repeating: "a", count: 1000).utf8)
        #expect(ContentDigest.hex(of: long) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    @Test func adamWMatchesAHandComputedStep() {
        let w = Tensor(shape: [2, 1], data: [1.0, -2.0], requiresGrad: true)
        let bias = Tensor(shape: [1], data: [0.5], requiresGrad: true)
        let opt = AdamW(parameters: [("w", w), ("b", bias)], hyper: .init(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1))
        w.grad = [0.5, -1.0]
        bias.grad = [2.0]
        opt.step(learningRate: 0.1)
        // First step: m̂ = g, v̂ = g², update = g/|g| = sign(g); decay only on the matrix.
        #expect(abs(w.data[0] - (1.0 - 0.1 * 1 - 0.1 * 0.1 * 1.0)) < 1e-6)
        #expect(abs(w.data[1] - (-2.0 + 0.1 * 1 - 0.1 * 0.1 * -2.0)) < 1e-6)
        #expect(abs(bias.data[0] - (0.5 - 0.1)) < 1e-6)
    }

    @Test func gradientClippingScalesToTheBound() {
        let a = Tensor(shape: [2], data: [0, 0], requiresGrad: true)
        a.grad = [3, 4]
        #expect(clipGradientNorm([("a", a)], maxNorm: 1) == 5)
        #expect(abs(a.grad![0] - 0.6) < 1e-5 && abs(a.grad![1] - 0.8) < 1e-5)
    }

    @Test func warmupThenCosine() {
        let s = LearningRateSchedule(peak: 1, warmupSteps: 10, totalSteps: 110, minRatio: 0.1)
        #expect(s.rate(at: 0) == 0.1)
        #expect(s.rate(at: 9) == 1)
        #expect(abs(s.rate(at: 60) - 0.55) < 1e-5)
        #expect(abs(s.rate(at: 110) - 0.1) < 1e-6)
    }
}

@Suite("Low-rank adapters")
struct LowRankAdapterTests {
    @Test func onlyAdaptersTrainAndMergingKeepsTheFunction() throws {
        let model = try TransformerLM(config: .llama(vocabSize: 13, hiddenSize: 16, numLayers: 2, numHeads: 2, intermediateSize: 24), seed: 1)
        let tokens = TokenBatch([1, 4, 7, 2, 9])
        let before = withoutGradients { model.forward(tokens).logits!.data }
        let adapters = model.attachLowRankAdapters(rank: 3, alpha: 3, seed: 2)
        #expect(adapters.count == 2 * 2 * 7)
        #expect(withoutGradients { model.forward(tokens).logits!.data } == before)  // B starts at zero
        model.loss(tokens).backward()
        #expect(model.parameters.allSatisfy { $0.tensor.grad == nil })
        #expect(adapters.filter { $0.name.hasSuffix("lora_b") }.allSatisfy { $0.tensor.grad != nil })
        var g = SeededGenerator(seed: 3)
        for (_, t) in adapters { for i in 0..<t.count { t.data[i] = g.nextNormal() * 0.1 } }
        let adapted = withoutGradients { model.forward(tokens).logits!.data }
        #expect(adapted != before)
        model.mergeLowRankAdapters()
        let merged = withoutGradients { model.forward(tokens).logits!.data }
        #expect(zip(adapted, merged).map { abs($0 - $1) }.max()! < 1e-4)
    }
}

@Suite("Word tokenizer")
struct WordTokenizerTests {
    @Test func splitsWordsDigitsAndSymbolsWithOneLeadingSpace() {
        #expect(WordTokenizer.split("abc + de - 12 ->") == ["abc", " +", " de", " -", " 1", "2", " -", ">"])
        #expect(WordTokenizer.split("a  b") == ["a", " ", " b"])
        #expect(WordTokenizer.split(" x ") == [" x", " "])
    }

    @Test func roundTripsAndRegistersItsKind() throws {
        let t = WordTokenizer(corpus: "abc + de = 12 -> 21")
        let text = "abc -> de = 21 + de"
        #expect(t.decode(t.encode(text)) == text)
        #expect(t.encode(" zz") == [t.unknownID])
        let restored = try TokenizerRegistry.load(json: t.serialized())
        #expect(restored.encode(text) == t.encode(text))
        #expect(restored.fingerprint == t.fingerprint)
    }

    @Test func dummyPrefixSpaceMakesTheFirstWordLikeTheOthers() throws {
        let t = WordTokenizer(pieces: [" abc", " +", " 1", "2"], addPrefixSpace: true)
        #expect(t.encode("abc + abc") == [4, 5, 4])
        #expect(t.encode(" 12") == [6, 7])  // text that starts with a space is left as it is
        #expect(t.decode(t.encode("abc + 12")) == "abc + 12")
        let restored = try TokenizerRegistry.load(json: t.serialized())
        #expect(restored.encode("abc") == [4])
        #expect(WordTokenizer(pieces: t.pieces).fingerprint != t.fingerprint)
    }
}
