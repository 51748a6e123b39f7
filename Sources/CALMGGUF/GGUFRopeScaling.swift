import CALMModels
import Foundation

/// Rotary frequency rescaling as GGUF files declare it: `<arch>.rope.scaling.*` metadata
/// (linear), or, for Llama 3.1 and later, a `rope_freqs.weight` tensor of per-frequency
/// divisors that llama.cpp's converter computes from the Hugging Face llama3 parameters.
enum GGUFRopeScaling {
    static func fromMetadata(_ m: GGUFMetadata, architecture a: String) throws -> TransformerConfig.RopeScaling? {
        let typeKey = "\(a).rope.scaling.type"
        switch try m.optionalString(typeKey) {
        case nil, "none"?:
            // Older files give a linear factor on its own.
            guard let factor = try m.optionalDouble("\(a).rope.scale_linear"), factor != 0, factor != 1 else { return nil }
            guard factor > 0 else { throw m.fail("\(a).rope.scale_linear", "= \(factor) must be positive") }
            return .init(type: .linear, factor: factor)
        case "linear"?:
            let factor = try m.double("\(a).rope.scaling.factor")
            guard factor > 0 else { throw m.fail("\(a).rope.scaling.factor", "= \(factor) must be positive") }
            return factor == 1 ? nil : .init(type: .linear, factor: factor)
        case let other?:
            throw m.fail(typeKey, "= \"\(other)\" is not supported (supported: none, linear, and llama3 through rope_freqs.weight)")
        }
    }

    /// Hugging Face's llama3 divisor of each rotary frequency (`_compute_llama3_parameters`;
    /// the converter's `generate_extra_tensors` writes the same numbers).
    static func llama3Divisors(headDim: Int, theta: Double, factor: Double, low: Double, high: Double, original: Double) -> [Double] {
        wavelengths(headDim: headDim, theta: theta).map { wavelength in
            if wavelength < original / high { return 1 }
            if wavelength > original / low { return factor }
            let smooth = (original / wavelength - low) / (high - low)
            return 1 / ((1 - smooth) / factor + smooth)
        }
    }

    static func wavelengths(headDim: Int, theta: Double) -> [Double] {
        stride(from: 0, to: headDim, by: 2).map { 2 * Double.pi * pow(theta, Double($0) / Double(headDim)) }
    }

    /// The llama3 scaling whose divisors equal `factors` (within float32 rounding), with Meta's
    /// band edges (low_freq_factor 1, high_freq_factor 4). The factor is the divisor of the
    /// lowest frequency. The original context comes from a divisor inside the smoothed band
    /// (its wavelength fixes it); without one, any context between the band edges gives the
    /// same frequencies, and the file's own value, 8192 or the middle of that range is taken.
    /// Divisors that fit no llama3 scaling are refused: arbitrary per-frequency factors are
    /// not implemented.
    static func llama3(fitting factors: [Float], headDim: Int, theta: Double, originalContext: Int?,
                       path: String) throws -> TransformerConfig.RopeScaling? {
        guard factors.count == headDim / 2 else {
            throw GGUFError(path: path, "rope_freqs.weight has \(factors.count) values, expected head_dim / 2 = \(headDim / 2)")
        }
        if factors.allSatisfy({ $0 == 1 }) { return nil }
        guard let last = factors.last, last.isFinite, last > 1 else {
            throw GGUFError(path: path, "rope_freqs.weight ends with the divisor \(factors.last ?? 0), not a llama3 factor above 1")
        }
        let factor = Double(last)
        let (low, high) = (1.0, 4.0)
        let wavelengths = Self.wavelengths(headDim: headDim, theta: theta)
        func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-4 * max(abs(a), abs(b)) }
        var candidates: [Int] = []
        if let i = factors.indices.first(where: { !close(Double(factors[$0]), 1) && !close(Double(factors[$0]), factor) }) {
            // divisor = 1 / ((1 - s) / factor + s), s = (original / wavelength - low) / (high - low)
            let s = (1 / Double(factors[i]) - 1 / factor) / (1 - 1 / factor)
            candidates.append(Int((wavelengths[i] * (low + s * (high - low))).rounded()))
        } else {
            // Unscaled frequencies need wavelength < original / high, fully scaled ones > original / low.
            let above = factors.indices.filter { close(Double(factors[$0]), 1) }.map { wavelengths[$0] * high }.max() ?? 0
            let below = factors.indices.filter { close(Double(factors[$0]), factor) }.map { wavelengths[$0] * low }.min() ?? .infinity
            candidates = [originalContext, 8192].compactMap { $0 }
            if above < below, below.isFinite { candidates.append(Int(((above + below) / 2).rounded())) }
        }
        for original in candidates where original > 0 {
            let expected = llama3Divisors(headDim: headDim, theta: theta, factor: factor, low: low, high: high, original: Double(original))
            if zip(expected, factors).allSatisfy({ close($0, Double($1)) }) {
                return .init(type: .llama3, factor: factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: original)
            }
        }
        throw GGUFError(path: path, "rope_freqs.weight holds per-frequency divisors that match no llama3 rope scaling (factor \(factor), low_freq_factor 1, high_freq_factor 4, original context tried: \(candidates.map(String.init).joined(separator: ", "))); arbitrary frequency factors are not implemented")
    }
}
