import CALMCheckpoint
import CALMHuggingFace
import CALMSupport
import Foundation

/// Writes a composition for use outside this project: its bridge weights as
/// `composition.safetensors` and a `composition.json` that names the anchor and every augment
/// (with content hashes), the connections and the bridge hyper-parameters.
public enum CompositionExport {
    public static func export(_ path: String, registry: ExpertRegistry, to directory: String) throws -> [String] {
        let loaded = try CompositionCheckpoint.load(path, registry: registry)
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
        var expertFiles: [String: String] = [:]
        for augment in loaded.spec.augments {
            expertFiles[augment.name] = registry.path(of: try registry.entry(named: augment.name))
        }
        let description = Description(spec: loaded.spec,
                                      anchorPath: CompositionCheckpoint.anchorPath(loaded.spec.anchor.path, compositionPath: path),
                                      expertFiles: expertFiles, gateStatistics: loaded.gateStatistics)
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
