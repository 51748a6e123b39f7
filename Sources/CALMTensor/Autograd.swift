extension Tensor {
    /// Builds the result of an op. The graph link is recorded only when gradients are
    /// enabled and some input requires a gradient; otherwise the result is a plain constant.
    /// `family` is what `OpProfile` reports the op's time under.
    static func result(
        shape: [Int], data: [Float], inputs: [Tensor], family: OpFamily,
        backward: @escaping (Tensor) -> Void
    ) -> Tensor {
        let out = Tensor(shape: shape, data: data)
        if GradientMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) {
            out.requiresGrad = true
            out.parents = inputs.filter { $0.requiresGrad }
            out.backwardFn = { node in OpProfile.backward(family) { backward(node) } }
        }
        OpProfile.forwardDone(family)
        return out
    }

    /// Reverse-mode differentiation from this tensor.
    ///
    /// `seed` is d(objective)/d(self); it defaults to ones, so for a scalar loss this computes
    /// d(loss)/d(x) for every leaf `x` that requires a gradient. Gradients accumulate into
    /// `grad` (call `zeroGrad()` between steps). Intermediate gradients are freed as soon as
    /// they have been propagated, and the graph is released afterwards.
    public func backward(seed: [Float]? = nil) {
        guard requiresGrad else { return }
        let order = topologicalOrder()
        if let seed {
            precondition(seed.count == count, "seed has \(seed.count) elements, tensor \(count)")
            withGradBuffer { g in for i in 0..<g.count { g[i] += seed[i] } }
        } else {
            withGradBuffer { g in for i in 0..<g.count { g[i] += 1 } }
        }
        for node in order.reversed() {
            guard let fn = node.backwardFn else { continue }
            if node.grad != nil { fn(node) }
            // Intermediate results: free the gradient and the graph edges.
            node.grad = nil
            node.backwardFn = nil
            node.parents = []
        }
    }

    /// Nodes reachable through `parents`, each after all of its inputs.
    private func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        // Iterative DFS: graphs of deep models would overflow the stack when recursive.
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            if !visited.insert(ObjectIdentifier(node)).inserted { continue }
            stack.append((node, true))
            for parent in node.parents where !visited.contains(ObjectIdentifier(parent)) {
                stack.append((parent, false))
            }
        }
        return order
    }
}
