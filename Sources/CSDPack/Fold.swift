/// BN folding and int8 weight codes, computed in float32 with the same
/// operation order as the PyTorch fake-quant model (model.fold_bn and
/// quant.fake_quant_weight), so the packed int8 codes are the ones the model
/// was trained with, bit for bit.
public struct FoldedLayer {
    /// int8 codes [out][in...], row-major.
    public var codes: [Int8]
    /// Per output channel: the real value of one code step (float32 sigma, widened).
    public var sigma: [Double]
    /// Per output channel: the folded float bias b'.
    public var bias: [Double]
    public var outputs: Int
    public var fanIn: Int

    /// sum_i |code_ji| for each output channel j.
    public var absRowSums: [Int] {
        (0..<outputs).map { j in
            var s = 0
            for i in 0..<fanIn { s += abs(Int(codes[j * fanIn + i])) }
            return s
        }
    }
}

public enum Fold {
    /// W' = W * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps) (float32),
    /// then per-channel int8 codes. `inputScale` (per input channel, float32) multiplies the
    /// weights first when the layer reads normalized pixels with std != 1.
    public static func foldBN(weight: [Float], outputs: Int, gamma: [Float], beta: [Float], mean: [Float],
                              variance: [Float], eps: Double) -> FoldedLayer {
        let fanIn = weight.count / outputs
        let eps32 = Float(eps)
        var folded = [Float](repeating: 0, count: weight.count)
        var bias = [Double](repeating: 0, count: outputs)
        for j in 0..<outputs {
            let scale = gamma[j] / (variance[j] + eps32).squareRoot()
            for i in 0..<fanIn { folded[j * fanIn + i] = weight[j * fanIn + i] * scale }
            bias[j] = Double(beta[j] - mean[j] * scale)
        }
        return quantizePerChannel(folded, outputs: outputs, bias: bias)
    }

    /// Per-output-channel int8 codes: sigma = max|w| / 127 (1 if all zero), code = round_half_even(w / sigma).
    public static func quantizePerChannel(_ w: [Float], outputs: Int, bias: [Double]) -> FoldedLayer {
        let fanIn = w.count / outputs
        var codes = [Int8](repeating: 0, count: w.count)
        var sigma = [Double](repeating: 1, count: outputs)
        for j in 0..<outputs {
            var amax: Float = 0
            for i in 0..<fanIn { amax = max(amax, abs(w[j * fanIn + i])) }
            let s: Float = amax > 0 ? amax / 127 : 1
            sigma[j] = Double(s)
            for i in 0..<fanIn { codes[j * fanIn + i] = code(w[j * fanIn + i], s) }
        }
        return FoldedLayer(codes: codes, sigma: sigma, bias: bias, outputs: outputs, fanIn: fanIn)
    }

    /// One sigma for the whole tensor (the classifier head).
    public static func quantizePerTensor(_ w: [Float], outputs: Int, bias: [Double]) -> FoldedLayer {
        var amax: Float = 0
        for v in w { amax = max(amax, abs(v)) }
        let s: Float = amax > 0 ? amax / 127 : 1
        return FoldedLayer(codes: w.map { code($0, s) }, sigma: [Double](repeating: Double(s), count: outputs),
                           bias: bias, outputs: outputs, fanIn: w.count / outputs)
    }

    @inline(__always) static func code(_ w: Float, _ sigma: Float) -> Int8 {
        let q = (w / sigma).rounded(.toNearestOrEven)
        return Int8(min(127, max(-127, q)))
    }
}

/// Integer neuron parameters for one layer (docs/SEMANTICS.md sections 2 and 4.7).
public struct NeuronParameters {
    public var shift: Int
    public var thresholds: [Int32]
    public var biases: [Int32]
    /// Largest relative rounding error of a threshold: 0.5 / min theta.
    public var precision: Double

    public static let targetTheta = 2048.0  // 2^11: rounding costs < 2^-12 relative

    /// - Parameters:
    ///   - scales: per neuron, the real threshold in accumulator units (theta at k = 0).
    ///   - biases: per neuron, the real bias in accumulator units.
    ///   - accBound: a bound on |acc| for every neuron.
    ///   - levels: L.
    public static func choose(scales: [Double], biases: [Double], accBound: Double, levels: Int,
                              layer: String) throws(PackError) -> NeuronParameters {
        for (j, s) in scales.enumerated() where !(s.isFinite && s > 0) {
            throw PackError("\(layer): threshold of neuron \(j) is \(s) (not a positive finite number)")
        }
        for (j, b) in biases.enumerated() where !b.isFinite {
            throw PackError("\(layer): bias of neuron \(j) is not finite")
        }
        let limit = Double(Int32.max)
        func fits(_ k: Int) -> Bool {
            let p = Double(1 << k)
            let maxTheta = scales.map { ($0 * p).rounded(.toNearestOrEven) }.max() ?? 1
            let maxBeta = biases.map { abs(($0 * p).rounded(.toNearestOrEven)) }.max() ?? 0
            return p * accBound + maxBeta + Double(levels + 1) * maxTheta <= limit
        }
        guard fits(0) else {
            throw PackError("\(layer): thresholds or biases do not fit int32 even without a shift (largest threshold \(scales.max() ?? 0))")
        }
        var k = 0
        while k < Int(24) && (scales.min() ?? 1) * Double(1 << k) < targetTheta && fits(k + 1) { k += 1 }
        let p = Double(1 << k)
        let thetas = scales.map { ($0 * p).rounded(.toNearestOrEven) }
        guard let minTheta = thetas.min(), minTheta >= 1 else {
            throw PackError("\(layer): a threshold rounds below 1 at the largest shift that fits int32 (k = \(k))")
        }
        return NeuronParameters(shift: k, thresholds: thetas.map { Int32($0) },
                                biases: biases.map { Int32(($0 * p).rounded(.toNearestOrEven)) },
                                precision: 0.5 / minTheta)
    }
}
