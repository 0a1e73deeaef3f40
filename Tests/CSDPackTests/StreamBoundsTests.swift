@testable import CSDPack
import Testing

/// The packer's range proof for the int16 stream (docs/SEMANTICS.md section 4, step 5) against brute
/// force: for small random writers, every input the proof allows (counts 0 ... M, spike trains of T
/// steps with at most M spikes) gives a fused value inside `fusedValue` and step values inside
/// `anyValue`, and the interval ends are reached by some input (the proof is tight for the fused value).
@Suite struct StreamBoundsTests {
    @Test func intervalsHoldEveryValueAndTheFusedOnesAreReached() {
        var state: UInt64 = 0x5EED
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        let steps = 3
        for _ in 0..<300 {
            let k = 1 + next(3), m = 1 + next(3), shift = next(6), tokens = 1 + next(2)
            let w = (0..<k).map { _ in Int16(next(2001) - 1000) }
            let biases = (0..<tokens).map { _ in Int64(next(4001) - 2000) }
            var b = StreamBounds(w16: w, channels: 1, inputMax: Int64(m))
            for v in w { if v > 0 { b.pos[0] += Int64(v) } else { b.neg[0] += Int64(v) } }
            b.biases = biases
            b.biasMin[0] = biases.min()!
            b.biasMax[0] = biases.max()!
            let h: Int64 = shift > 0 ? 1 << (shift - 1) : 0
            let fused = b.fusedValue(0, shift: shift), any = b.anyValue(0, shift: shift)
            var seenLo = Int64.max, seenHi = Int64.min
            // every input's spike train: T bits with at most m spikes (counts 0 ... m)
            let trains = (0..<(1 << steps)).filter { $0.nonzeroBitCount <= m }
            var index = [Int](repeating: 0, count: k)  // input i's train: trains[index[i]]
            while true {
                for bias in biases {
                    var p = bias + h, last: Int64 = 0
                    for t in 0..<steps {
                        for i in 0..<k where trains[index[i]] >> t & 1 == 1 { p += Int64(w[i]) }
                        let v = p >> shift, step = v - last
                        #expect(step >= any.lo && step <= any.hi, "step \(step) outside \(any)")
                        #expect(v >= fused.lo && v <= fused.hi, "running value \(v) outside \(fused)")
                        last = v
                    }
                    seenLo = min(seenLo, last)
                    seenHi = max(seenHi, last)
                }
                var i = 0  // the next combination of trains
                while i < k && index[i] == trains.count - 1 {
                    index[i] = 0
                    i += 1
                }
                if i == k { break }
                index[i] += 1
            }
            #expect(seenLo == fused.lo && seenHi == fused.hi, "fused interval \(fused) not reached: \(seenLo) ... \(seenHi)")
        }
    }
}
