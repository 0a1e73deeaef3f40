@testable import CSDPack
import Testing

@Suite struct FoldTests {
    @Test func foldsBatchNormAndQuantizesPerChannel() {
        // W = [[1, -2], [0.5, 0]], gamma = [2, 1], beta = [0.5, 0], mean = [1, 2], var = [3, 0], eps = 1:
        // scale = [2 / sqrt(4), 1 / sqrt(1)] = [1, 1]; W' = W; b' = [0.5 - 1, 0 - 2] = [-0.5, -2].
        let f = Fold.foldBN(weight: [1, -2, 0.5, 0], outputs: 2, gamma: [2, 1], beta: [0.5, 0], mean: [1, 2],
                            variance: [3, 0], eps: 1)
        #expect(f.bias == [-0.5, -2])
        #expect(f.fanIn == 2 && f.outputs == 2)
        // Channel 0: sigma = 2/127, 1 / sigma = 63.5 -> 64 (half to even), -2 / sigma = -127.
        #expect(f.sigma[0] == Double(Float(2) / 127))
        #expect(f.codes[0] == 64 && f.codes[1] == -127)
        // Channel 1: sigma = 0.5/127, 0.5 / sigma = 127, 0 -> 0.
        #expect(f.codes[2] == 127 && f.codes[3] == 0)
        #expect(f.absRowSums == [191, 127])
    }

    @Test func roundsHalfToEven() {
        // sigma = 127/127 = 1: codes are round_half_even(w).
        let f = Fold.quantizePerChannel([127, 0.5, 1.5, 2.5, -0.5, -1.5], outputs: 1, bias: [0])
        #expect(f.codes == [127, 0, 2, 2, 0, -2])
    }

    @Test func zeroChannelGetsUnitScale() {
        let f = Fold.quantizePerChannel([0, 0, 0, 3], outputs: 2, bias: [0, 0])
        #expect(f.sigma[0] == 1 && f.codes[0] == 0 && f.codes[1] == 0)
        #expect(f.codes[3] == 127)
    }

    @Test func perTensorSharesOneScale() {
        let f = Fold.quantizePerTensor([1, -4, 2, 0.5], outputs: 2, bias: [0, 0])
        #expect(f.sigma == [Double(Float(4) / 127), Double(Float(4) / 127)])
        #expect(f.codes == [32, -127, 64, 16])  // 31.75 -> 32, 63.5 -> 64, 15.875 -> 16
    }
}

@Suite struct NeuronParameterTests {
    @Test func picksTheSmallestShiftReaching2To11() throws {
        // theta = 10 * 2^k >= 2048 first at k = 8: theta 2560, beta 2.5 * 256 = 640.
        let p = try NeuronParameters.choose(scales: [10], biases: [2.5], accBound: 100, levels: 7, layer: "t")
        #expect(p.shift == 8 && p.thresholds == [2560] && p.biases == [640])
        #expect(p.precision == 0.5 / 2560)
    }

    @Test func stopsWhereInt32WouldOverflow() throws {
        // 2^k * 2^30 must stay below 2^31: only k = 0 fits.
        let p = try NeuronParameters.choose(scales: [10.4], biases: [-3.5], accBound: Double(1 << 30), levels: 7, layer: "t")
        #expect(p.shift == 0 && p.thresholds == [10] && p.biases == [-4])
        #expect(p.precision == 0.05)
    }

    @Test func refusesUnrepresentableThresholds() {
        #expect(throws: PackError.self) {
            try NeuronParameters.choose(scales: [1e10], biases: [0], accBound: 1, levels: 7, layer: "big")
        }
        #expect(throws: PackError.self) {  // rounds to 0 at the only shift that fits
            try NeuronParameters.choose(scales: [0.1], biases: [0], accBound: Double(1 << 30), levels: 7, layer: "small")
        }
        #expect(throws: PackError.self) {
            try NeuronParameters.choose(scales: [.nan], biases: [0], accBound: 1, levels: 7, layer: "nan")
        }
    }
}
