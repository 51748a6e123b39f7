import Dispatch
import CALMCheckpoint
import CALMTensor
import CKernels
import Foundation
import Testing

@Suite("Quantized formats and kernels")
struct QuantizedKernelTests {
    static let formats = QuantizationFormat.allCases

    @Test func halfConversionRoundsToNearestEven() {
        var g = SeededGenerator(seed: 1)
        var values: [Float] = [0, -0, 65504, 65519.996, 65520, -65520, 6.1035156e-05, 6.0975552e-05, 5.9604645e-08, 2.9802322e-08,
                               2.9802326e-08, 1e-10, .infinity, -.infinity]
        for _ in 0..<20000 { values.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &g))) }
        for v in values where !v.isNaN {
            #expect(ck_float_to_half(v) == Float16(v).bitPattern, "\(v)")
        }
        for bits in UInt16.min...UInt16.max {
            let expected = Float(Float16(bitPattern: bits))
            let got = ck_half_to_float(bits)
            #expect(expected.isNaN ? got.isNaN : got.bitPattern == expected.bitPattern, "half \(bits)")
        }
    }

    @Test(arguments: formats)
    func quantizationMatchesReference(format: QuantizationFormat) throws {
        let (rows, cols) = (6, 128)
        let values = sampleMatrix(rows: rows, cols: cols, seed: 3)
        let q = try QuantizedMatrix(quantizing: values, rows: rows, cols: cols, format: format)
        #expect(q.bytes == Reference.quantize(values, format: format))
        #expect(q.bytes.count == rows * format.rowBytes(columns: cols))
    }

    /// Blocks quantized by gguf-py (bit-identical to ggml's reference), from scripts/make_quant_golden.py.
    @Test(arguments: formats)
    func quantizationMatchesGGUFGolden(format: QuantizationFormat) throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/quant/golden.h5").standardized.path
        let file = try HDF5File.open(path)
        let (shape, input) = try file.readFloats("input")
        let expected = try file.readUnsigned(format.rawValue, elementSize: format == .bf16 ? 2 : 1).bytes
        let q = try QuantizedMatrix(quantizing: input, rows: shape[0], cols: shape[1], format: format)
        #expect(q.bytes == expected)
        if let first = zip(q.bytes, expected).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
            Issue.record("first difference at byte \(first.offset) (row \(first.offset / q.rowBytes))")
        }
    }

    @Test(arguments: formats)
    func dequantizationMatchesReferenceOnEveryPath(format: QuantizationFormat) throws {
        let (rows, cols) = (5, 96)
        let q = try QuantizedMatrix(quantizing: sampleMatrix(rows: rows, cols: cols, seed: 4), rows: rows, cols: cols, format: format)
        let expected = Reference.dequantize(q.bytes, count: rows * cols, format: format)
        #expect(q.dequantized().data.map(\.bitPattern) == expected.map(\.bitPattern))
        var portable = [Float](repeating: 0, count: rows * cols)
        ck_dequantize_rows_portable(format.kernelIDForTests, q.bytes, Int64(rows), Int64(cols), &portable)
        #expect(portable.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    @Test func bf16RowsNeedNotBeWholeBlocks() throws {
        let values: [Float] = [1, -2.5, 3.25, 1e-3, 7, 0, -1]
        let q = try QuantizedMatrix(quantizing: values, rows: 1, cols: 7, format: .bf16)
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7]
        let y = Tensor(shape: [1, 7], data: x).linear(q)
        #expect(abs(y.item - zip(q.dequantized().data, x).map(*).reduce(0, +)) < 1e-5)
    }

    /// Up to 16 rows run the kernels straight off the blocks (threaded from 64 weight rows on), more rows the
    /// dequantized panels with sgemm; both against x · Wᵀ with W dequantized to float32.
    @Test(arguments: formats, [(1, 64, 96), (2, 40, 64), (1, 300, 256), (7, 300, 96), (9, 33, 64), (20, 70, 64)])
    func linearMatchesDequantizedFloat32(format: QuantizationFormat, dims: (Int, Int, Int)) throws {
        let (rows, outF, inF) = dims
        let q = try QuantizedMatrix(quantizing: sampleMatrix(rows: outF, cols: inF, seed: 5), rows: outF, cols: inF, format: format)
        let dense = q.dequantized()
        var g = SeededGenerator(seed: 6)
        let x = Tensor(shape: [1, rows, inF], data: (0..<(rows * inF)).map { _ in g.nextNormal() })
        let bias = Tensor(shape: [outF], data: (0..<outF).map { _ in g.nextNormal() })
        let residual = Tensor(shape: [1, rows, outF], data: (0..<(rows * outF)).map { _ in g.nextNormal() })
        for b in [nil, bias] {
            for r in [nil, residual] {
                let got = x.linear(q, bias: b, residual: r), expected = x.linear(dense, bias: b, residual: r)
                #expect(got.shape == [1, rows, outF])
                #expect(relativeError(got.data, expected.data) < 1e-4)
            }
        }
        // The portable matrix-vector kernel agrees too.
        var portable = [Float](repeating: 0, count: outF)
        ck_matvec_portable(format.kernelIDForTests, q.bytes, Int64(outF), Int64(inF), x.data, nil, &portable)
        #expect(relativeError(portable, Array(x.linear(dense).data[0..<outF])) < 1e-4)
    }

    /// Splitting a product over 2, 3 or 5 threads (the kernels' pool) gives the same rows, bit
    /// for bit, as one thread, for every format including plain float32 rows.
    @Test(arguments: formats + [nil], [2, 3, 5])
    func threadedMatrixVectorProductMatchesOneThread(format: QuantizationFormat?, threads: Int32) throws {
        let (outF, inF) = (1000, 256)
        var g = SeededGenerator(seed: 10)
        let values = (0..<(outF * inF)).map { _ in g.nextUniform() - 0.5 }
        let x = (0..<inF).map { _ in g.nextNormal() }
        let bias = (0..<outF).map { _ in g.nextNormal() }
        let (kernel, bytes): (Int32, [UInt8]) = try format.map {
            ($0.kernelIDForTests, try QuantizedMatrix(quantizing: values, rows: outF, cols: inF, format: $0).bytes)
        } ?? (Int32(CK_F32), values.withUnsafeBytes { Array($0) })
        var single = [Float](repeating: 0, count: outF), split = single
        ck_matvec_threads(kernel, bytes, Int64(outF), Int64(inF), x, bias, &single, 1)
        ck_matvec_threads(kernel, bytes, Int64(outF), Int64(inF), x, bias, &split, threads)
        #expect(split.map(\.bitPattern) == single.map(\.bitPattern))
        // And against the float32 product (int16 activation codes for the block formats).
        let dense = format == nil ? values : try QuantizedMatrix(format: format!, rows: outF, cols: inF, bytes: bytes).dequantized().data
        let expected = (0..<outF).map { r in bias[r] + (0..<inF).reduce(Float(0)) { $0 + dense[r * inF + $1] * x[$1] } }
        #expect(relativeError(split, expected) < 1e-4)
    }

    /// Several activation rows at once (blocks widened once for eight or four rows) give each
    /// row exactly what its own matrix-vector product gives, on one thread and on three.
    @Test(arguments: formats + [nil], [1, 3, 4, 9, 8, 13, 32])
    func fewRowProductEqualsRowByRowProducts(format: QuantizationFormat?, n: Int) throws {
        let (outF, inF) = (200, 96)
        var g = SeededGenerator(seed: 12)
        let values = (0..<(outF * inF)).map { _ in g.nextUniform() - 0.5 }
        let x = (0..<(n * inF)).map { _ in g.nextNormal() }
        let bias = (0..<outF).map { _ in g.nextNormal() }
        let (kernel, bytes): (Int32, [UInt8]) = try format.map {
            ($0.kernelIDForTests, try QuantizedMatrix(quantizing: values, rows: outF, cols: inF, format: $0).bytes)
        } ?? (Int32(CK_F32), values.withUnsafeBytes { Array($0) })
        var rowByRow = [Float](repeating: 0, count: n * outF)
        for k in 0..<n {
            rowByRow.withUnsafeMutableBufferPointer { y in
                ck_matvec_threads(kernel, bytes, Int64(outF), Int64(inF), Array(x[(k * inF)..<((k + 1) * inF)]), bias,
                                  y.baseAddress! + k * outF, 1)
            }
        }
        for threads: Int32 in [1, 3] {
            var together = [Float](repeating: 0, count: n * outF)
            ck_matmul_threads(kernel, bytes, Int64(outF), Int64(inF), x, Int64(n), bias, &together, threads)
            #expect(together.map(\.bitPattern) == rowByRow.map(\.bitPattern))
        }
    }

    /// Several threads multiplying at once (one owns the worker pool, the others run alone) each
    /// get exactly their own one-thread results, over many rounds.
    @Test func concurrentCallersGetTheirOwnProducts() throws {
        let (outF, inF, callers) = (300, 128, 4)
        var g = SeededGenerator(seed: 13)
        let matrices = try (0..<callers).map { _ in
            try QuantizedMatrix(quantizing: (0..<(outF * inF)).map { _ in g.nextUniform() - 0.5 }, rows: outF, cols: inF, format: .q4_1)
        }
        let inputs = (0..<callers).map { _ in (0..<(2 * inF)).map { _ in g.nextNormal() } }
        let expected = (0..<callers).map { c in
            var y = [Float](repeating: 0, count: 2 * outF)
            ck_matmul_threads(matrices[c].format.kernelIDForTests, matrices[c].bytes, Int64(outF), Int64(inF), inputs[c], 2, nil, &y, 1)
            return y
        }
        let mismatches = FailureCount()
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            for _ in 0..<200 {
                var y = [Float](repeating: 0, count: 2 * outF)
                ck_matmul_threads(matrices[c].format.kernelIDForTests, matrices[c].bytes, Int64(outF), Int64(inF), inputs[c], 2, nil, &y, 2)
                if y.map(\.bitPattern) != expected[c].map(\.bitPattern) { mismatches.add() }
            }
        }
        #expect(mismatches.value == 0)
    }

    /// The input gradient dY · W (and a bias gradient) equal the float32 path's; no weight gradient exists.
    @Test(arguments: formats, [1, 2, 6])
    func inputGradientMatchesDequantizedFloat32(format: QuantizationFormat, rows: Int) throws {
        let (outF, inF) = (300, 64)
        let q = try QuantizedMatrix(quantizing: sampleMatrix(rows: outF, cols: inF, seed: 7), rows: outF, cols: inF, format: format)
        let dense = q.dequantized()
        var g = SeededGenerator(seed: 8)
        let xValues = (0..<(rows * inF)).map { _ in g.nextNormal() }
        let seed = (0..<(rows * outF)).map { _ in g.nextNormal() }
        func gradients(_ weight: WeightMatrix) -> (x: [Float], bias: [Float], residual: [Float]) {
            let x = Tensor(shape: [rows, inF], data: xValues, requiresGrad: true)
            let bias = Tensor(zeros: [outF], requiresGrad: true)
            let residual = Tensor(zeros: [rows, outF], requiresGrad: true)
            x.linear(weight, bias: bias, residual: residual).backward(seed: seed)
            return (x.grad!, bias.grad!, residual.grad!)
        }
        let got = gradients(.quantized(q)), expected = gradients(.dense(dense))
        #expect(relativeError(got.x, expected.x) < 1e-4)
        #expect(relativeError(got.bias, expected.bias) < 1e-6)
        #expect(got.residual == seed && expected.residual == seed)  // d(residual) is dY itself
        #expect(!q.requiresGrad)
    }

    @Test func invalidBlocksAreRefused() throws {
        #expect(throws: QuantizationError.self) { try QuantizedMatrix(format: .q8_0, rows: 2, cols: 32, bytes: [UInt8](repeating: 0, count: 67)) }
        #expect(throws: QuantizationError.self) { try QuantizedMatrix(format: .q4_0, rows: 1, cols: 48, bytes: [UInt8](repeating: 0, count: 27)) }
        #expect(throws: QuantizationError.self) { try QuantizedMatrix(quantizing: [Float](repeating: 1, count: 40), rows: 1, cols: 40, format: .q4_1) }
        #expect(throws: QuantizationError.self) { try QuantizedMatrix(quantizing: [.nan] + [Float](repeating: 1, count: 31), rows: 1, cols: 32, format: .q8_0) }
        // A block whose f16 scale is infinite (0x7C00) is reported at its first value.
        var bytes = [UInt8](repeating: 0, count: 36)
        bytes[19] = 0x7C
        let q = try QuantizedMatrix(format: .q4_0, rows: 1, cols: 64, bytes: bytes)
        #expect(q.firstNonFiniteValue() == 32)
    }
}

extension QuantizationFormat {
    /// The C kernels' number for this format (mirrors the library's internal mapping).
    var kernelIDForTests: Int32 {
        switch self {
        case .q8_0: return Int32(CK_Q8_0)
        case .q4_0: return Int32(CK_Q4_0)
        case .q4_1: return Int32(CK_Q4_1)
        case .bf16: return Int32(CK_BF16)
        }
    }
}

/// A counter shared by threads.
private final class FailureCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
