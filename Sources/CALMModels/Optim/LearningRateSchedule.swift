import Foundation

/// Linear warm-up to `peak`, then cosine decay to `peak · minRatio` at `totalSteps`.
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public var peak: Float
    public var warmupSteps: Int
    public var totalSteps: Int
    public var minRatio: Float

    public init(peak: Float, warmupSteps: Int, totalSteps: Int, minRatio: Float = 0.1) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.minRatio = minRatio
    }

    /// The rate for update number `step` (0-based).
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let decaySteps = max(1, totalSteps - warmupSteps)
        let progress = min(1, Float(step - warmupSteps) / Float(decaySteps))
        let cosine = 0.5 * (1 + Foundation.cos(Float.pi * progress))
        return peak * (minRatio + (1 - minRatio) * cosine)
    }
}
