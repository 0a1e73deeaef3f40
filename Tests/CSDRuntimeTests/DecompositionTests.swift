@testable import CSDRuntime
import CSDFormat
import Testing

/// Spiking: the DIF neuron with delay D over I[t] = (current[t] << shift) + (bias at t = 0).
/// Returns the output train (bit u = spike at output step u). The runtime's `Kernels.difTrain`.
func fireDIF(_ current: UnsafePointer<Int32>, steps: Int, delay: Int, shift: Int32, bias: Int32,
             threshold: Int32, levels: Int32) -> UInt32 {
    Kernels.difTrain(current, stride: 1, steps: steps, delay: delay, shift: shift, bias: bias, threshold: threshold, levels: levels)
}

/// Running count of `train` up to and including step t.
func runningCount(_ train: UInt32, through t: Int) -> Int32 {
    Int32(truncatingIfNeeded: (train & ((2 << UInt32(truncatingIfNeeded: t)) &- 1)).nonzeroBitCount)
}

/// DESIGN 3.2's temporal decomposition of a product of two spike trains, as the runtime computes it
/// (`Kernels.listProducts`):
/// I[t] = a_t * B_t + A_{t-1} * b_t, with capitals the running counts.
@Suite struct DecompositionTests {
    @Test func currentsSumToTheProductOfCountsAndNeverLookAhead() {
        var r = SplitMix(state: 99)
        for _ in 0..<2000 {
            let steps = r.int(1...16)
            let mask = UInt32((1 << steps) - 1)
            let a = UInt32(truncatingIfNeeded: r.next()) & mask, b = UInt32(truncatingIfNeeded: r.next()) & mask
            let current = UnsafeMutablePointer<Int32>.allocate(capacity: 16)
            defer { current.deallocate() }
            current.initialize(repeating: 0, count: 16)
            var entry = a, b16 = UInt16(b)  // a one-entry active list: channel 0, train a
            let events = Kernels.listProducts(&entry, count: 1, &b16, bstride: 1, width: .bits16, current)
            var sum: Int32 = 0
            for t in 0..<steps {
                sum += current[t]
                // Up to step t the currents add up to A_t * B_t: nothing from later steps leaks in.
                let prefix = (0...t).reduce(Int32(0)) { $0 + current[$1] }
                #expect(prefix == runningCount(a, through: t) * runningCount(b, through: t))
            }
            #expect(sum == Int32(a.nonzeroBitCount * b.nonzeroBitCount))
            for t in steps..<16 { #expect(current[t] == 0) }
            // One addition per spike of a at a step where b has spiked so far, and per later spike of b.
            #expect(events <= UInt32(a.nonzeroBitCount + b.nonzeroBitCount))
        }
    }

    @Test func difNeuronAtDelayTFiresTheFusedCountAtTheFirstSteps() {
        var r = SplitMix(state: 7)
        for _ in 0..<2000 {
            let steps = r.int(1...16), levels = Int32(r.int(1...steps))
            let theta = Int32(r.int(1...50)), bias = Int32(r.int(-60...60))
            let current = UnsafeMutablePointer<Int32>.allocate(capacity: 16)
            defer { current.deallocate() }
            var total: Int32 = 0
            for t in 0..<steps { current[t] = Int32(r.int(-40...60)); total += current[t] }
            let train = fireDIF(current, steps: steps, delay: steps, shift: 0, bias: bias, threshold: theta, levels: levels)
            let fused = Kernels.neuronCount(total &+ bias &+ (theta >> 1), threshold: theta, levels: levels)
            #expect(train == (UInt32(1) << UInt32(fused)) - 1)
        }
    }

    /// `Kernels.difTrain` against the spec's loop (SEMANTICS.md section 2) for every delay 0 ... T, including
    /// its shortcut for D >= T.
    @Test func difNeuronMatchesTheSpecLoopAtEveryDelay() {
        var r = SplitMix(state: 11)
        let current = UnsafeMutablePointer<Int32>.allocate(capacity: 16)
        defer { current.deallocate() }
        for _ in 0..<3000 {
            let steps = r.int(1...16), levels = Int32(r.int(1...steps)), delay = r.int(0...steps)
            let theta = Int32(r.int(1...400)), bias = Int32(r.int(-300...300)), shift = Int32(r.int(0...3))
            for t in 0..<steps { current[t] = Int32(r.int(-90...120)) }
            var v = theta >> 1, emitted: Int32 = 0, expected: UInt32 = 0
            for tau in 0..<(steps + delay) {
                if tau < steps { v += (current[tau] << shift) + (tau == 0 ? bias : 0) }
                if tau >= delay && v >= theta && emitted < levels {
                    expected |= 1 << UInt32(tau - delay); v -= theta; emitted += 1
                }
            }
            let train = fireDIF(current, steps: steps, delay: delay, shift: shift, bias: bias, threshold: theta, levels: levels)
            #expect(train == expected, "T=\(steps) D=\(delay) L=\(levels)")
        }
    }
}

