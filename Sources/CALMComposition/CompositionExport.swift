import CALMCheckpoint
import CALMHuggingFace
import CALMSupport
import Foundation

/// Writes a composition for use outside this project: its bridge weights as
/// `composition.safetensors` and a `composition.json` that names the anchor and every augment
/// (with content hashes), the connections and the bridge hyper-parameters.
public enum CompositionExport {
    public static func export(_ path: String, resolver: ModelResolver, to directory: String) throws -> [String] {
        let loaded = try CompositionCheckpoint.load(path, resolver: resolver)
        let tensors = loaded.model.parameters.map { (name: $0.name, shape: $0.tensor.shape, data: $0.tensor.data) }
        struct Description: Encodable {
            let format = "calm-composition"
            let formatVersion = 1
            let spec: CompositionSpec
            let anchorPath: String
            let expertFiles: [String: String]
            let tensorNaming = "augments.<i>.connections.<j>.<parameter>: augment i in spec.augments order, connection j in its connections order"
            let gateStatistics: [GateStatistics]?
            enum CodingKeys: String, CodingKey {
                case format, spec, tensorNaming = "tensor_naming", gateStatistics = "gate_statistics"
                case formatVersion = "format_version", anchorPath = "anchor_path", expertFiles = "expert_files"
            }
        }
        let expertFiles = Dictionary(uniqueKeysWithValues: zip(loaded.spec.augments.map(\.name), loaded.expertPaths))
        let description = Description(spec: loaded.spec, anchorPath: loaded.anchorPath, expertFiles: expertFiles, gateStatistics: loaded.gateStatistics)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(description)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let names = ["composition.safetensors", "composition.json"]
        try SafetensorsWriter.write(tensors, metadata: ["format": "calm-composition"],
                                    to: (directory as NSString).appendingPathComponent(names[0]))
        try writeAtomically(json, to: (directory as NSString).appendingPathComponent(names[1]))
        return names
    }
}
