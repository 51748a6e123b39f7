import CALMTensor
import Foundation

extension RotaryEmbedding {
    /// The rotary tables of `config`, with its frequency rescaling applied as Hugging Face
    /// defines it (`_compute_linear_scaling_rope_parameters`, `_compute_llama3_parameters`).
    public init(config: TransformerConfig) {
        let base = RotaryEmbedding(headDim: config.headDim, theta: config.ropeTheta).inverseFrequencies
        guard let scaling = config.ropeScaling else {
            self.init(inverseFrequencies: base)
            return
        }
        switch scaling.type {
        case .linear:
            self.init(inverseFrequencies: base.map { $0 / Float(scaling.factor) })
        case .llama3:
            // Long wavelengths are slowed by `factor`, short ones kept, and the band between
            // interpolated smoothly. validate() guarantees the optional fields are present.
            let factor = Float(scaling.factor)
            let low = Float(scaling.lowFreqFactor ?? 1), high = Float(scaling.highFreqFactor ?? 4)
            let original = Float(scaling.originalMaxPositions ?? 8192)
            let lowWavelength = original / low, highWavelength = original / high
            self.init(inverseFrequencies: base.map { f in
                let wavelength = 2 * Float.pi / f
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return f / factor }
                let smooth = (original / wavelength - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            })
        }
    }
}
