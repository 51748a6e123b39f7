import CALMModels
import CALMTensor
import Testing

/// A tiny Llama whose projection rows are whole 32-value blocks (width 64, FFN 96).
func blockFriendlyLM(seed: UInt64, vocab: Int = 29, layers: Int = 3) throws -> TransformerLM {
    let config = TransformerConfig.llama(vocabSize: vocab, hiddenSize: 64, numLayers: layers, numHeads: 4, numKVHeads: 2,
                                         intermediateSize: 96, maxPositions: 48)
    let model = try TransformerLM(config: config, seed: seed)
    model.setTrainable(false)
    return model
}

@Suite("Quantized models")
struct QuantizedModelTests {
    @Test(arguments: QuantizationFormat.allCases)
    func logitsEqualTheDequantizedFloat32Model(format: QuantizationFormat) throws {
        let (model, summary) = try blockFriendlyLM(seed: 2).quantized(format)
        #expect(summary.quantized.count == 3 * 7 && summary.keptFloat.isEmpty)
        #expect(model.isQuantized && model.parameters.count == model.weights.count - 21)  // all but the projections
        let reference = try model.dequantized()
        #expect(!reference.isQuantized)
        // A batch of two 9-token rows runs the panel + sgemm path; one token the matrix-vector path.
        let batch = TokenBatch(ids: [1, 5, 9, 2, 14, 3, 3, 8, 11, 4, 4, 7, 0, 19, 28, 2, 6, 6], batch: 2, length: 9)
        for tokens in [batch, TokenBatch([17])] {
            let got = withoutGradients { model.forward(tokens).logits!.data }
            let expected = withoutGradients { reference.forward(tokens).logits!.data }
            #expect(relativeError(got, expected) < 1e-4)
        }
    }

    @Test(arguments: QuantizationFormat.allCases)
    func cachedDecodingEqualsFullRecompute(format: QuantizationFormat) throws {
        let model = try blockFriendlyLM(seed: 7).quantized(format).model
        let sequence = [1, 5, 9, 2, 14, 3, 3, 8, 11, 0]
        let full = withoutGradients { model.forward(TokenBatch(sequence)).logits!.data }  // (1, T, V)
        let cache = model.makeCache()
        var pieces = [withoutGradients { model.forward(TokenBatch(Array(sequence[0..<4])), cache: cache).logits!.data }]
        for t in 4..<sequence.count {
            pieces.append(withoutGradients { model.forward(TokenBatch([sequence[t]]), cache: cache).logits!.data })
        }
        // One-token steps multiply quantized blocks by int16 codes of the activations (relative
        // error up to 1.5e-5 of a block's largest value); the prompt runs float32 sgemm.
        #expect(relativeError(pieces.flatMap { $0 }, full) < 1e-4)
    }

    @Test func quantizingKeepsEmbeddingsNormsAndHeadFloat32() throws {
        let source = try blockFriendlyLM(seed: 3)
        let (model, _) = try source.quantized(.q4_0)
        for (name, weight) in model.weights {
            let isProjection = name.contains(".attn.") || name.contains(".mlp.")
            #expect((weight.quantized != nil) == isProjection, "\(name)")
        }
        #expect(model.parameterCount == source.parameterCount)
        #expect(model.weights.map(\.name) == source.weights.map(\.name))
        // An already quantized model is refused rather than quantized twice.
        #expect(throws: QuantizationError.self) { try model.quantized(.q8_0) }
    }

    @Test func rowsThatAreNotWholeBlocksStayFloat32() throws {
        let config = TransformerConfig.llama(vocabSize: 20, hiddenSize: 48, numLayers: 1, numHeads: 4, numKVHeads: 4,
                                             intermediateSize: 64, maxPositions: 16)
        let (model, summary) = try TransformerLM(config: config, seed: 1).quantized(.q8_0)
        // Inputs of width 48 are not whole blocks; only down_proj (input 64) is quantized.
        #expect(summary.quantized == ["layers.0.mlp.down_proj.weight"])
        #expect(summary.keptFloat.count == 6)
        #expect(model.blocks[0].down.weight.quantized != nil)
        // bf16 has one-value blocks: everything is stored.
        #expect(try TransformerLM(config: config, seed: 1).quantized(.bf16).summary.quantized.count == 7)
    }
}

@Suite("Quantized embeddings and head")
struct QuantizedEmbeddingTests {
    /// With `embeddings: true` the token table (gathered row by row) and the output head are
    /// stored quantized too; tied and untied models both match their dequantized copies.
    @Test(arguments: [true, false])
    func embeddingsAndHeadCanBeQuantized(tied: Bool) throws {
        var config = TransformerConfig.llama(vocabSize: 29, hiddenSize: 64, numLayers: 2, numHeads: 4, numKVHeads: 2,
                                             intermediateSize: 96, maxPositions: 32)
        config.tiedEmbeddings = tied
        let source = try TransformerLM(config: config, seed: 9)
        source.setTrainable(false)
        let (model, summary) = try source.quantized(.q8_0, embeddings: true)
        #expect(summary.quantized.count == 2 * 7 + (tied ? 1 : 2))
        #expect(model.embedding.quantized != nil && (tied || model.head?.quantized != nil))
        #expect(model.parameters.allSatisfy { !$0.name.contains("embed") && !$0.name.contains("lm_head") })
        let reference = try model.dequantized()
        for tokens in [TokenBatch(ids: [1, 5, 9, 2, 14, 3, 28, 0], batch: 2, length: 4), TokenBatch([7])] {
            let got = withoutGradients { model.forward(tokens).logits!.data }
            let expected = withoutGradients { reference.forward(tokens).logits!.data }
            #expect(relativeError(got, expected) < 1e-4)
        }
        // By default they stay float32.
        #expect(try source.quantized(.q8_0).model.embedding.quantized == nil)
    }
}
