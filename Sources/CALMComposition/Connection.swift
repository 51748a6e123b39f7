/// One bridge: the output of augment block `augmentLayer` feeds a cross-attention whose result
/// is added to the output of anchor block `anchorLayer` (0-based block indices; -1 names the
/// embedding output, before the first block).
public struct Connection: Codable, Hashable, Sendable, CustomStringConvertible {
    public var anchorLayer: Int
    public var augmentLayer: Int

    public init(anchorLayer: Int, augmentLayer: Int) {
        self.anchorLayer = anchorLayer
        self.augmentLayer = augmentLayer
    }

    public var description: String { "\(anchorLayer):\(augmentLayer)" }
}

/// A malformed or impossible connection specification.
public struct ConnectionError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}

public enum ConnectionRule {
    /// The paper's rule (§4: every 4th augment layer, paired with evenly spaced anchor layers),
    /// made exact:
    ///
    /// - n = max(1, ⌊N_A / 4⌋) connections;
    /// - augment blocks 3, 7, 11, …, 4n − 1 (the output of every 4th block; with fewer than
    ///   4 blocks, the last one);
    /// - anchor blocks ⌊(i + 1) · N_B / n⌋ − 1 for i = 0 … n − 1, so the last connection
    ///   feeds the anchor's last block and the others are evenly spaced below it.
    ///
    /// For an 8-block anchor and 8-block augment this gives (3, 3), (7, 7); for a 12-block
    /// anchor and an 8-block augment, (5, 3), (11, 7).
    public static func defaultConnections(anchorLayers: Int, augmentLayers: Int) -> [Connection] {
        let n = max(1, augmentLayers / 4)
        return (0..<n).map { i in
            let augment = augmentLayers < 4 ? augmentLayers - 1 : 4 * i + 3
            let anchor = max(0, (i + 1) * anchorLayers / n - 1)
            return Connection(anchorLayer: anchor, augmentLayer: augment)
        }
    }

    /// Parses explicit pairs "anchor:augment,anchor:augment" (e.g. "3:3,7:7") and checks them.
    public static func parse(_ spec: String, anchorLayers: Int, augmentLayers: Int) throws -> [Connection] {
        var pairs: [Connection] = []
        for part in spec.split(separator: ",", omittingEmptySubsequences: false) {
            let fields = part.trimmingCharacters(in: .whitespaces).split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 2, let anchor = Int(fields[0]), let augment = Int(fields[1]) else {
                throw ConnectionError("malformed connection \"\(part)\": expected ANCHOR_LAYER:AUGMENT_LAYER, e.g. 3:3")
            }
            pairs.append(Connection(anchorLayer: anchor, augmentLayer: augment))
        }
        try validate(pairs, anchorLayers: anchorLayers, augmentLayers: augmentLayers)
        return pairs
    }

    public static func validate(_ pairs: [Connection], anchorLayers: Int, augmentLayers: Int) throws {
        guard !pairs.isEmpty else { throw ConnectionError("no connections given") }
        for p in pairs {
            guard (-1..<anchorLayers).contains(p.anchorLayer) else {
                throw ConnectionError("connection \(p): anchor layer \(p.anchorLayer) is outside -1...\(anchorLayers - 1) (-1: the embedding output)")
            }
            guard (-1..<augmentLayers).contains(p.augmentLayer) else {
                throw ConnectionError("connection \(p): augment layer \(p.augmentLayer) is outside -1...\(augmentLayers - 1) (-1: the embedding output)")
            }
        }
        guard Set(pairs).count == pairs.count else { throw ConnectionError("a connection is listed twice") }
    }
}

import Foundation
