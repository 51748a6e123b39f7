import CALMModels
import CALMSupport
import CALMTensor
import Foundation

/// A Hugging Face model family this project converts to and from.
///
/// A family reads `config.json` into a `TransformerConfig` (refusing values that would change
/// the math in ways the transformer does not implement), names the Hugging Face tensor behind
/// every CALM parameter, and writes both back for `calm export`. A new family is a new
/// conforming type added to `HuggingFaceArchitectures.all`; nothing else changes.
public protocol HuggingFaceArchitecture: Sendable {
    /// The `model_type` string of `config.json`.
    var modelType: String { get }
    /// The `architectures` entry written on export (e.g. "LlamaForCausalLM").
    var causalLMClass: String { get }
    func config(from hf: HuggingFaceConfig) throws -> TransformerConfig
    /// Where a CALM parameter comes from, for a checkpoint whose tensor names are `names`.
    func source(for parameter: String, config: TransformerConfig, names: Set<String>) -> TensorSource?
    /// Tensors a checkpoint may hold that are not parameters (buffers saved by old versions).
    func isIgnorableBuffer(_ name: String) -> Bool
    /// The Hugging Face tensors of `model`, in a stable order.
    func exportTensors(_ model: TransformerLM) -> [(name: String, shape: [Int], data: [Float])]
    /// `config.json` fields for `config` (`model_type` and `architectures` are added by the caller).
    func exportConfig(_ config: TransformerConfig) throws -> [String: Any]
}

/// One CALM parameter's Hugging Face origin.
public struct TensorSource: Sendable {
    public enum Transform: Sendable {
        case identity
        /// Conv1D weights are stored (in, out).
        case transpose
        /// Rows `part·n ..< (part+1)·n` of the (transposed, for weights) tensor whose rows hold
        /// `parts` fused projections (GPT-2's c_attn).
        case fusedPart(part: Int, parts: Int, transpose: Bool)
    }
    public var name: String
    public var transform: Transform

    public init(_ name: String, _ transform: Transform = .identity) {
        self.name = name
        self.transform = transform
    }

    /// A row-major `(rows, cols)` matrix transposed to `(cols, rows)`.
    static func transposed(_ data: [Float], rows: Int, cols: Int) -> [Float] {
        var out = [Float](repeating: 0, count: data.count)
        for i in 0..<rows { for j in 0..<cols { out[j * rows + i] = data[i * cols + j] } }
        return out
    }

    /// Applies the transform to a tensor `(shape, data)` from the checkpoint.
    func apply(shape: [Int], data: [Float]) throws -> (shape: [Int], data: [Float]) {
        func transposed(_ shape: [Int], _ data: [Float]) -> ([Int], [Float]) {
            guard shape.count == 2 else { return (shape, data) }
            return ([shape[1], shape[0]], Self.transposed(data, rows: shape[0], cols: shape[1]))
        }
        switch transform {
        case .identity: return (shape, data)
        case .transpose: return transposed(shape, data)
        case .fusedPart(let part, let parts, let transpose):
            let (s, d) = transpose ? transposed(shape, data) : (shape, data)
            guard let rows = s.first, rows % parts == 0 else {
                throw ConversionError("tensor \(name) has shape \(shape), which does not split into \(parts) parts")
            }
            let n = rows / parts
            let rowSize = s.dropFirst().reduce(1, *)
            return ([n] + s.dropFirst(), Array(d[(part * n * rowSize)..<((part + 1) * n * rowSize)]))
        }
    }
}

/// A conversion problem: unsupported architecture or configuration, or tensors that do not fit.
public struct ConversionError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The supported families by `model_type`.
public enum HuggingFaceArchitectures {
    public static let all: [String: any HuggingFaceArchitecture] = {
        var out: [String: any HuggingFaceArchitecture] = [:]
        for a: any HuggingFaceArchitecture in [LlamaFamily(.llama), LlamaFamily(.mistral), LlamaFamily(.qwen2), LlamaFamily(.gemma), GPT2Family()] {
            out[a.modelType] = a
        }
        return out
    }()

    public static var supported: String { all.keys.sorted().joined(separator: ", ") }

    public static func named(_ modelType: String) throws -> any HuggingFaceArchitecture {
        guard let a = all[modelType] else {
            throw ConversionError("unsupported architecture \"\(modelType)\" (supported: \(supported))")
        }
        return a
    }
}

/// `config.json` with typed, checked accessors; errors name the file and the field.
public struct HuggingFaceConfig {
    public let path: String
    public let json: [String: JSONValue]

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConversionError("\(path): missing (a Hugging Face model directory has a config.json)")
        }
        guard let json = JSONValue.parse(data)?.object else { throw ConversionError("\(path): is not a JSON object") }
        self.init(path: path, json: json)
    }

    public init(path: String, json: [String: JSONValue]) {
        self.path = path
        self.json = json
    }

    func fail(_ field: String, _ message: String) -> ConversionError {
        ConversionError("\(path): \(field) \(message)")
    }

    public var modelType: String {
        get throws {
            guard let t = json["model_type"]?.string else { throw fail("model_type", "is missing") }
            return t
        }
    }

    /// A present, non-null value.
    func value(_ key: String) -> JSONValue? {
        guard let v = json[key], !v.isNull else { return nil }
        return v
    }

    /// The field `key` read by `extract`; absent or null gives `fallback`, or an error without one.
    private func field<T>(_ key: String, _ fallback: T?, _ kind: String, _ extract: (JSONValue) -> T?) throws -> T {
        guard let v = value(key) else {
            guard let fallback else { throw fail(key, "is missing") }
            return fallback
        }
        guard let x = extract(v) else { throw fail(key, "is not \(kind)") }
        return x
    }

    func int(_ key: String, default fallback: Int? = nil) throws -> Int { try field(key, fallback, "an integer", \.int) }
    func double(_ key: String, default fallback: Double? = nil) throws -> Double { try field(key, fallback, "a number", \.number) }
    func bool(_ key: String, default fallback: Bool) throws -> Bool { try field(key, fallback, "true or false", \.bool) }

    func string(_ key: String) throws -> String? {
        value(key) == nil ? nil : try field(key, nil, "a string", \.string)
    }

    /// The Hugging Face name of an activation (`tanhName` differs by family: gelu_new for GPT-2).
    static func name(of activation: Activation.Kind, tanhName: String) -> String {
        switch activation {
        case .silu: return "silu"
        case .gelu: return "gelu"
        case .geluTanh: return tanhName
        case .relu: return "relu"
        }
    }

    /// The activation named by `key` (supported: silu/swish, gelu, gelu_new/gelu_pytorch_tanh, relu).
    func activation(_ key: String, default fallback: String) throws -> Activation.Kind {
        try activation(named: try string(key) ?? fallback, field: key)
    }

    func activation(named name: String, field key: String) throws -> Activation.Kind {
        switch name {
        case "silu", "swish": return .silu
        case "gelu": return .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": return .geluTanh
        case "relu": return .relu
        default: throw fail(key, "\"\(name)\" is not supported (supported: silu, swish, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)")
        }
    }

    /// Rotary base and scaling, from `rope_theta` + `rope_scaling` (transformers 4) or
    /// `rope_parameters` (transformers 5).
    func rope() throws -> (theta: Double, scaling: TransformerConfig.RopeScaling?) {
        let parameters = value("rope_parameters")?.object
        let theta = try parameters?["rope_theta"]?.number ?? double("rope_theta", default: 10_000)
        let scaling = value("rope_scaling")?.object ?? parameters
        guard let scaling else { return (theta, nil) }
        let field = value("rope_scaling") != nil ? "rope_scaling" : "rope_parameters"
        let type = scaling["rope_type"]?.string ?? scaling["type"]?.string ?? "default"
        func number(_ key: String) throws -> Double {
            guard let n = scaling[key]?.number else { throw fail(field, "lacks the number \(key) for rope type \(type)") }
            return n
        }
        switch type {
        case "default": return (theta, nil)
        case "linear": return (theta, .init(type: .linear, factor: try number("factor")))
        case "llama3":
            return (theta, .init(type: .llama3, factor: try number("factor"), lowFreqFactor: try number("low_freq_factor"),
                                 highFreqFactor: try number("high_freq_factor"),
                                 originalMaxPositions: Int(try number("original_max_position_embeddings"))))
        default:
            throw fail(field, "rope type \"\(type)\" is not supported (supported: default, linear, llama3)")
        }
    }

    /// Refuses a field whose value would change the math unless it has its neutral value.
    func requireNeutral(_ key: String, _ isNeutral: (JSONValue) -> Bool, _ why: String) throws {
        if let v = value(key), !isNeutral(v) { throw fail(key, "= \(v) is not supported: \(why)") }
    }
}
