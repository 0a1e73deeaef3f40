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
            let b = StreamBounds(w16: w, biases: biases, channels: 1, inputMax: Int64(m))  // one channel: a bias per token
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

/// The stream shift's choice and its refusals name the writer at fault.
@Suite struct StreamShiftTests {
    /// One channel: weights +w and -w, inputs up to m, biases 0.
    static func writer(_ w: Int16, inputs m: Int64 = 7) -> StreamBounds {
        StreamBounds(w16: [w, -w], biases: [0], channels: 1, inputMax: m)
    }

    @Test func theSmallestShiftThatFitsAfterEveryWriter() throws {
        // 7 x 4,000 = 28,000 fits at s = 0; a second such writer reaches 56,000: s = 1 (the half, 1, included)
        #expect(try StreamBounds.streamShift([Self.writer(4_000)], names: ["a"]) == 0)
        #expect(try StreamBounds.streamShift([Self.writer(4_000), Self.writer(4_000)], names: ["a", "b"]) == 1)
    }

    @Test func refusalsNameTheWriter() {
        // an exact sum beyond int32 (70,000 x 32,767)
        let big = [Self.writer(1), Self.writer(32_767, inputs: 70_000)]
        #expect(throws: PackError.self) { _ = try StreamBounds.streamShift(big, names: ["a", "big"]) }
        do {
            _ = try StreamBounds.streamShift(big, names: ["a", "big"])
        } catch {
            #expect(error.message.hasPrefix("big: the stream writer's exact sum") && error.message.contains("int32"))
        }
        // int32 sums, but 300 writers of +-7 x 2^28 (weights +-2^14, inputs up to 7 x 2^14) cannot share an
        // int16 stream even at s = 24: 112 each, over 32,767 after the 293rd
        let many = [StreamBounds](repeating: Self.writer(1 << 14, inputs: 7 << 14), count: 300)
        do {
            _ = try StreamBounds.streamShift(many, names: (0..<300).map { "w\($0)" })
            Issue.record("300 writers were accepted")
        } catch {
            #expect(error.message.hasPrefix("w292: no stream shift in 0...24 keeps the residual stream in int16"))
        }
    }
}
