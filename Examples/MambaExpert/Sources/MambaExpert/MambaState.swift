/// The recurrent state of one block for a batch of sequences: all a Mamba block keeps of the
/// past, whatever its length (a transformer would keep a key/value pair per position instead).
public final class MambaLayerState {
    public let batch: Int
    /// `(B, E, K − 1)`: each channel's last K − 1 convolution inputs, oldest first (zeros
    /// before the sequence starts, as the convolution's left padding).
    var conv: [Float]
    /// `(B, E, N)`: the selective state-space model's state.
    var ssm: [Float]
    /// Positions fed so far.
    public internal(set) var length = 0

    init(batch: Int, config: MambaConfig) {
        self.batch = batch
        conv = [Float](repeating: 0, count: batch * config.intermediateSize * (config.convKernel - 1))
        ssm = [Float](repeating: 0, count: batch * config.intermediateSize * config.stateSize)
    }

    /// Bytes held (the figure `MambaConfig.recurrentStateBytes` counts per block and sequence).
    public var byteCount: Int { (conv.count + ssm.count) * MemoryLayout<Float>.size }
}

/// One sequence batch's state in every block.
public final class MambaState {
    public let layers: [MambaLayerState]

    public init(batch: Int, config: MambaConfig) {
        layers = (0..<config.numLayers).map { _ in MambaLayerState(batch: batch, config: config) }
    }

    public var byteCount: Int { layers.reduce(0) { $0 + $1.byteCount } }
}
