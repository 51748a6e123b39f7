import Foundation

/// Shape of a Mamba language model (Hugging Face `MambaConfig`, the fields that change the math).
/// Stored as the checkpoint's `config` attribute: snake_case JSON, unknown keys rejected.
public struct MambaConfig: Codable, Sendable, Equatable {
    public static let modelType = "mamba"

    public var vocabSize: Int
    /// Width of the residual stream, C.
    public var hiddenSize: Int
    /// Width of each channel's recurrent state, N.
    public var stateSize: Int
    public var numLayers: Int
    /// E = expand · C channels inside each mixer.
    public var expand: Int
    /// K: the depthwise causal convolution's kernel.
    public var convKernel: Int
    /// R: the low-rank width from which the per-channel time step is projected.
    public var timeStepRank: Int
    public var layerNormEpsilon: Float
    /// Biases on in_proj and out_proj.
    public var useBias: Bool
    public var useConvBias: Bool
    /// The output head is the token embedding.
    public var tiedEmbeddings: Bool

    public var intermediateSize: Int { expand * hiddenSize }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", stateSize = "state_size", numLayers = "num_layers"
        case expand, convKernel = "conv_kernel", timeStepRank = "time_step_rank", layerNormEpsilon = "layer_norm_epsilon"
        case useBias = "use_bias", useConvBias = "use_conv_bias", tiedEmbeddings = "tied_embeddings"
    }

    public init(vocabSize: Int, hiddenSize: Int, stateSize: Int = 16, numLayers: Int, expand: Int = 2, convKernel: Int = 4,
                timeStepRank: Int? = nil, layerNormEpsilon: Float = 1e-5, useBias: Bool = false, useConvBias: Bool = true,
                tiedEmbeddings: Bool = true) throws {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.stateSize = stateSize
        self.numLayers = numLayers
        self.expand = expand
        self.convKernel = convKernel
        // Hugging Face's "auto": ceil(C / 16).
        self.timeStepRank = timeStepRank ?? (hiddenSize + 15) / 16
        self.layerNormEpsilon = layerNormEpsilon
        self.useBias = useBias
        self.useConvBias = useConvBias
        self.tiedEmbeddings = tiedEmbeddings
        try validate()
    }

    /// Every size positive; a message naming the field otherwise.
    public func validate() throws {
        for (field, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("state_size", stateSize),
                               ("num_layers", numLayers), ("expand", expand), ("conv_kernel", convKernel),
                               ("time_step_rank", timeStepRank)] where value < 1 {
            throw MambaError("config: \(field) must be >= 1, got \(value)")
        }
        guard layerNormEpsilon > 0, layerNormEpsilon.isFinite else {
            throw MambaError("config: layer_norm_epsilon must be a positive number, got \(layerNormEpsilon)")
        }
    }

    /// Canonical JSON (sorted keys): part of the content hash.
    public func jsonString() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Parses and validates the stored JSON; an unknown or missing key is an error naming it.
    public static func parse(json: String) throws -> MambaConfig {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw MambaError("config: is not a JSON object")
        }
        let known = Set([CodingKeys.vocabSize, .hiddenSize, .stateSize, .numLayers, .expand, .convKernel, .timeStepRank,
                         .layerNormEpsilon, .useBias, .useConvBias, .tiedEmbeddings].map(\.rawValue))
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw MambaError("config: unknown key \(unknown)")
        }
        let config: MambaConfig
        do { config = try JSONDecoder().decode(MambaConfig.self, from: Data(json.utf8)) } catch let DecodingError.keyNotFound(key, _) {
            throw MambaError("config: missing key \(key.stringValue)")
        } catch {
            throw MambaError("config: malformed (\(error))")
        }
        try config.validate()
        return config
    }

    /// Multiply-add FLOPs (×2) of one block for one token: the four projections, the
    /// convolution and the scan (state update and readout, 3 multiply-adds per state element).
    public var blockFLOPsPerToken: Double {
        let (c, e, n, k, r) = (Double(hiddenSize), Double(intermediateSize), Double(stateSize), Double(convKernel), Double(timeStepRank))
        let projections = c * 2 * e + e * (r + 2 * n) + r * e + e * c
        return 2 * (projections + e * k + 3 * e * n)
    }

    /// Bytes of one sequence's recurrent state: per block, the last K − 1 convolution inputs and
    /// the (E, N) state, whatever the sequence's length.
    public var recurrentStateBytes: Int {
        numLayers * intermediateSize * (convKernel - 1 + stateSize) * MemoryLayout<Float>.size
    }
}

/// A problem with a Mamba model, checkpoint or conversion; the message names the file or field.
public struct MambaError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
