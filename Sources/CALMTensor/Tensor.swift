import Foundation

/// A dense, contiguous, row-major float32 tensor that can take part in reverse-mode
/// automatic differentiation.
///
/// A tensor produced by an op records its inputs and a backward closure when gradients are
/// enabled and at least one input requires a gradient. `backward()` on a scalar result walks
/// that graph in reverse topological order. Frozen parameters (`requiresGrad == false`) never
/// get a gradient buffer, and ops skip their weight-gradient work, yet gradients still flow
/// through them to any input that does require one.
public final class Tensor {
    /// Dimensions, outermost first.
    public private(set) var shape: [Int]
    /// Elements in row-major order; `data.count == shape.product`.
    public var data: [Float]
    /// Whether this tensor wants a gradient (leaves) or depends on one that does (op results).
    public var requiresGrad: Bool
    /// Accumulated gradient, allocated on first use during `backward()`.
    public var grad: [Float]?

    /// Inputs this tensor was computed from (only those that require gradients matter).
    var parents: [Tensor] = []
    /// Propagates `self.grad` into the parents' gradients.
    var backwardFn: ((Tensor) -> Void)?

    public init(shape: [Int], data: [Float], requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(shape.reduce(1, *) == data.count,
                     "shape \(shape) needs \(shape.reduce(1, *)) elements, got \(data.count)")
        self.shape = shape
        self.data = data
        self.requiresGrad = requiresGrad
    }

    /// A tensor of zeros.
    public convenience init(zeros shape: [Int], requiresGrad: Bool = false) {
        self.init(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *)),
                  requiresGrad: requiresGrad)
    }

    /// A tensor filled with one value.
    public convenience init(filling value: Float, shape: [Int], requiresGrad: Bool = false) {
        self.init(shape: shape, data: [Float](repeating: value, count: shape.reduce(1, *)),
                  requiresGrad: requiresGrad)
    }

    /// A scalar (shape `[]`).
    public convenience init(scalar: Float) {
        self.init(shape: [], data: [scalar])
    }

    public var count: Int { data.count }
    public var rank: Int { shape.count }
    /// The size of the last dimension (1 for a scalar).
    public var lastDim: Int { shape.last ?? 1 }
    /// The number of rows when the tensor is viewed as `(count / lastDim, lastDim)`.
    public var rowCount: Int { lastDim == 0 ? 0 : count / lastDim }

    /// The only element of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item needs a one-element tensor, shape is \(shape)")
        return data[0]
    }

    /// Zeroes (drops) the gradient buffer.
    public func zeroGrad() { grad = nil }

    /// Runs `body` on the gradient buffer with `accumulate` false when this is the first
    /// gradient (the buffer is then uninitialised and `body` must write every element) and
    /// true when `body` must add to what is there. Saves the zero fill of `withGradBuffer`
    /// where a kernel can either write or add (a GEMM's beta).
    @inline(__always)
    func withGradOutput<R>(_ body: (UnsafeMutableBufferPointer<Float>, _ accumulate: Bool) -> R) -> R {
        if grad == nil {
            var result: R?
            grad = [Float].uninitialized(count: data.count) { result = body($0, false) }
            return result!
        }
        return grad!.withUnsafeMutableBufferPointer { body($0, true) }
    }

    /// Returns the gradient buffer, allocating zeros on first use.
    @inline(__always)
    func withGradBuffer<R>(_ body: (UnsafeMutableBufferPointer<Float>) -> R) -> R {
        if grad == nil { grad = [Float](repeating: 0, count: data.count) }
        return grad!.withUnsafeMutableBufferPointer { body($0) }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = data.prefix(8).map { String(format: "%.4f", Double($0)) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), data: [\(preview)\(count > 8 ? ", ..." : "")])"
    }
}

/// Whether op results record a graph. Off inside `withoutGradients`.
public enum GradientMode {
    @TaskLocal public static var isEnabled = true
}

/// Runs `body` without recording any autodiff graph (inference, evaluation).
public func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
    try GradientMode.$isEnabled.withValue(false) { try body() }
}
