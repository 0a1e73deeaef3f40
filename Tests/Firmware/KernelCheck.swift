import CSDMachine
import CSDRuntime

// The Cortex-M4 assembly twins (CSDMachine: csd_block_m4.h, csd_event_m4.h) against the Swift
// kernels they stand in for, on random cases, inside the Cortex-M4 firmware under QEMU (the only
// place the assembly runs). Linked into the mps2-an386 firmware, whose main prints
// "result: kernels cases=N mismatches=M dsp=1" and fails on any mismatch.
//
// - blockDotNeuronsM4 vs blockDotNeuronsPortable, blockDotStreamM4 vs blockDotStreamPortable:
//   blocks gathered from random uint8 rows (pixels or counts), weights over the full int8 / int16
//   range; every K from 1 to 40 and the reference model's 64, 128, 144, 288; 1 to 16 outputs;
//   1 to 4 rows; weight rows contiguous or strided; the pairings an image has: int16 weights into
//   the int16 stream (set with zero bias: the raw accumulators; or added onto random values, a bias
//   per output or per output and row as with token biases; stream shifts 0..24), int8 weights into neuron counts or prefix
//   trains (random thresholds, biases, levels 1..16, shifts 0..8; a neuron per output as in conv /
//   linear, one for all as in attention scores, or one per row as in attention values); rows
//   adjacent (conv positions) or strided (tokens).
// - eventSynapticOpsM4 vs eventSynapticOpsPortable: random active lists (trains of up to 16 steps;
//   prefix trains for InputTrains.prefix) against random int8 / int16 weight columns, 1 to 16 output
//   channels, the currents and the returned synaptic operations.

/// xorshift32: the same sequence on every run.
struct XorShift {
    var state: UInt32 = 0x2545_F491
    mutating func next() -> UInt32 {
        state ^= state &<< 13
        state ^= state &>> 17
        state ^= state &<< 5
        return state
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt32(truncatingIfNeeded: n)) }
}

let maxK = 288, maxOut = 16, maxStride = maxK + 3

/// Carves typed buffers out of the caller's memory (the firmware's arena, before any session: the check adds nothing
/// to the stack high-water mark the firmware measures).
struct Carver {
    var next: UnsafeMutableRawPointer
    let end: UnsafeMutableRawPointer
    mutating func take<T>(_ type: T.Type, _ count: Int) -> UnsafeMutablePointer<T> {
        let p = next.alignedUp(toMultipleOf: 16)
        next = p + count &* MemoryLayout<T>.stride
        precondition(next <= end, "kernel check memory too small")
        return p.bindMemory(to: T.self, capacity: count)
    }
}

/// Whether two buffers differ, read back with the type the kernels wrote them with. (A byte-wise raw
/// comparison of Int32 buffers, inlined next to the kernels' typed Int32 stores, was reordered before
/// them by the optimizer and reported false mismatches: compare typed.)
func differ<T: Equatable>(_ a: UnsafeMutablePointer<T>, _ b: UnsafeMutablePointer<T>, _ count: Int) -> Bool {
    var i = 0
    while i < count {
        if a[i] != b[i] { return true }
        i &+= 1
    }
    return false
}

/// `uint32_t kernel_check_run(void *memory, uint32_t bytes, uint32_t *cases)`: returns the mismatches.
@_cdecl("kernel_check_run")
public func kernelCheckRun(_ memory: UnsafeMutableRawPointer, _ bytes: UInt32, _ cases: UnsafeMutablePointer<UInt32>) -> UInt32 {
    var carve = Carver(next: memory, end: memory + Int(bytes))
    let rows = carve.take(UInt8.self, 4 * maxK), block = carve.take(UInt32.self, ((maxK + 3) / 4) * 8)
    let w8 = carve.take(Int8.self, maxOut * maxStride), w16 = carve.take(Int16.self, maxOut * maxStride)
    let n = 4 * maxOut
    let accA = carve.take(Int16.self, n), accB = carve.take(Int16.self, n), zero = carve.take(Int32.self, n)
    let theta = carve.take(Int32.self, n), bias = carve.take(Int32.self, n)
    let cntA = carve.take(UInt8.self, n), cntB = carve.take(UInt8.self, n)
    let list = carve.take(UInt32.self, 64), curA = carve.take(Int32.self, 16 * maxOut), curB = carve.take(Int32.self, 16 * maxOut)
    zero.update(repeating: 0, count: n)
    var r = XorShift(), count: UInt32 = 0, mismatches: UInt32 = 0
    let big = (64, 128, 144, 288)
    for t in 0..<44 {
        let k = t < 40 ? t + 1 : t == 40 ? big.0 : t == 41 ? big.1 : t == 42 ? big.2 : big.3
        for rep in 0..<6 {
            let outputs = 1 + r.below(maxOut)
            let stride = k + (rep >= 3 ? r.below(4) : 0)
            let nrows = 1 + r.below(4)
            for i in 0..<(4 * k) { rows[i] = UInt8(truncatingIfNeeded: r.next()) }
            for i in 0..<(outputs * stride) {
                let x = r.next()
                w8[i] = Int8(truncatingIfNeeded: x)
                w16[i] = Int16(truncatingIfNeeded: x &>> 8)
            }
            for j in 0..<n {
                theta[j] = 1 + Int32(r.next() % 20000)
                bias[j] = Int32(r.next() % 40001) - 20000
            }
            let bits = r.next()
            let shift = Int32(bits % 9), set = rep & 1 == 0, kind = (bits &>> 4) % 3
            let strided = (bits &>> 6) & 1 != 0, tokenBias = (bits &>> 7) & 1 != 0
            let levels = 1 + Int32((bits &>> 8) % 16), prefix = (bits &>> 12) & 1 != 0
            let streamShift = Int32((bits &>> 13) % 25)
            // output j, row r at [4 j + r] (adjacent rows) or [j + maxOut r] (strided)
            let outputStep = strided ? 1 : 4, rowStep = strided ? maxOut : 1
            for pairing in 0..<2 {
                let order: BlockOrder = pairing == 0 ? .interleaved : .natural
                for i in 0..<n {
                    let x = Int16(truncatingIfNeeded: r.next())
                    accA[i] = x
                    accB[i] = x
                    cntA[i] = 0
                    cntB[i] = 0
                }
                Kernels.putRows(block, rows, rowStride: k, rows: nrows, k: k, order: order)
                if order == .natural {
                    func sink(_ acc: UnsafeMutablePointer<Int16>) -> StreamSink {
                        StreamSink(stream: acc, biases: set ? zero : bias, outputStep: outputStep, rowStep: rowStep,
                                   paramStep: set ? 0 : 1, paramRowStep: tokenBias ? maxOut : 0, rows: nrows,
                                   write: set ? .set : .add, shift: streamShift)
                    }
                    Kernels.blockDotStreamM4(w16, wstride: stride, block, k: k, outputs: outputs, sink(accA))
                    Kernels.blockDotStreamPortable(w16, wstride: stride, block, k: k, outputs: outputs, sink(accB))
                    if differ(accA, accB, n) { mismatches &+= 1 }
                } else {
                    func sink(_ out: UnsafeMutablePointer<UInt8>) -> NeuronSink {
                        NeuronSink(out: out, thresholds: theta, biases: bias, outputStep: outputStep, rowStep: rowStep,
                                   paramStep: kind == 0 ? 1 : 0, paramRowStep: kind == 1 ? 1 : 0, shift: shift,
                                   levels: levels, rows: nrows, output: prefix ? .prefixTrains : .counts)
                    }
                    var a = sink(cntA), b = sink(cntB)
                    Kernels.blockDotNeuronsM4(w8, wstride: stride, block, k: k, outputs: outputs, &a)
                    Kernels.blockDotNeuronsPortable(w8, wstride: stride, block, k: k, outputs: outputs, &b)
                    if differ(cntA, cntB, n) || a.spikes != b.spikes { mismatches &+= 1 }
                }
                count &+= 1
            }
        }
    }
    for rep in 0..<160 {
        let outputs = 1 + r.below(maxOut), k = 1 + r.below(64)
        let entries = r.below(16), width: WeightWidth = rep & 1 != 0 ? .int16 : .int8
        let trains: InputTrains = (rep &>> 1) & 1 != 0 ? .prefix : .any
        for e in 0..<entries {  // prefix mode takes prefix trains only
            let train = trains == .prefix ? (2 &<< (r.next() % 16)) &- 1 : r.next() & 0xFFFF
            list[e] = (r.next() % UInt32(k)) &<< 16 | (train != 0 ? train : 1)
        }
        for i in 0..<(outputs * k) {
            let x = r.next()
            w8[i] = Int8(truncatingIfNeeded: x)
            w16[i] = Int16(truncatingIfNeeded: x &>> 8)
        }
        for i in 0..<(16 * outputs) {
            let x = Int32(bitPattern: r.next())
            curA[i] = x
            curB[i] = x
        }
        let weights = width == .int16 ? UnsafeRawPointer(w16) : UnsafeRawPointer(w8)
        let a = Kernels.eventSynapticOpsM4(list, count: entries, weights: weights, width: width, wstride: k, outputs: outputs,
                                           curA, trains: trains)
        let b = Kernels.eventSynapticOpsPortable(list, count: entries, weights: weights, width: width, wstride: k,
                                                 outputs: outputs, curB, trains: trains)
        if differ(curA, curB, 16 * outputs) || a != b { mismatches &+= 1 }
        count &+= 1
    }
    cases.pointee = count
    return mismatches
}
