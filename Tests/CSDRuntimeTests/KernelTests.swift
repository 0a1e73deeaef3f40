@testable import CSDRuntime
import Testing

/// The Swift kernels (Sources/CSDRuntime/Kernels, one test per file) against naive loops written here
/// from their doc comments and docs/SEMANTICS.md: Int64 arithmetic, explicit index formulas, nothing
/// shared with the kernels (on the host the kernels run their portable loops). Each test draws a few
/// hundred random cases from a fixed seed, covering the edges the images have: fan-in 1 ... 40 (every
/// K % 4) and 64, 128, 144, 288; partial blocks; strided rows; full int8 / int16 weight ranges; pixels
/// and counts; every border of maps as small as 1 x 1; T 1 ... 16 with every delay 0 ... T; uint8 and
/// uint16 trains. Outputs are compared byte for byte, sentinel bytes around them included, so a
/// write out of place fails too.
@Suite struct KernelTests {
    /// SpikeTrains: `spikes` counts the low 16 bits of every train; `train` / `setTrain` read and write
    /// one uint8 or uint16 element (its low bits) and nothing beside it; TrainWidth's byte sizes.
    @Test func spikeTrains() {
        var wrong = 0
        for x in 0..<65536 where Kernels.spikes(UInt32(x) | 0x5A5A_0000) != UInt32(x.nonzeroBitCount) { wrong += 1 }
        #expect(wrong == 0)
        #expect(TrainWidth.bits8.bytes == 1 && TrainWidth.bits16.bytes == 2)
        var r = SplitMix(state: 0x5B1E)
        for _ in 0..<300 {
            let width: TrainWidth = r.chance(0.5) ? .bits8 : .bits16, n = r.int(1...12), i = r.int(0...(n - 1))
            let before = (0..<(n * width.bytes + 4)).map { _ in UInt8(truncatingIfNeeded: r.next()) }
            let value = UInt32(truncatingIfNeeded: r.next())
            let b = Buffer(before)
            Kernels.setTrain(b.raw, width, i, value)
            var want = before
            for byte in 0..<width.bytes { want[i * width.bytes + byte] = UInt8(truncatingIfNeeded: value >> (8 * byte)) }
            guard agree(b.array, want, "setTrain \(width) at \(i)"),
                  agree(Kernels.train(b.raw, width, i), value & (width == .bits8 ? 0xFF : 0xFFFF), "train \(width) at \(i)")
            else { return }
        }
    }

    /// BlockGather: `putRows` (1 ... 4 real rows, contiguous or strided, both halfword orders and, on
    /// x86-64, bytes) and `putPatches` (3x3 fields with zero padding, cin 1 ... 32, maps with h, w =
    /// 1 ... 6 walked in blocks of 1 ... 4 positions so every border position and the partial last
    /// block occur) write the documented block word for word: group g of row r at words 8g + 2r,
    /// 8g + 2r + 1 (bytes: row r of the eight-value group g at bytes 32g + 8r), the padding and
    /// missing rows zero, nothing past `blockBytes` (bytes: past its own groups).
    @Test func blockGathers() {
        var r = SplitMix(state: 0xB10C)
        // byte blocks where this build has them (x86-64)
        let blockOrders: [BlockOrder] = [.interleaved, .natural] + (Kernels.neuronOrder(pixels: false) == .bytes ? [.bytes] : [])
        for _ in 0..<300 {
            let k = r.fanIn(), rows = r.int(1...4), order = r.pick(blockOrders)
            let pixels = r.chance(0.5)
            // rows of k contiguous values ([N][K] tokens, row stride >= K; a query's head channels, row stride D)
            let rowStride = k + r.int(0...5)
            let src = (0..<((rows - 1) * rowStride + k)).map { _ in r.value(pixels: pixels) }
            #expect(Kernels.blockBytes(k: k) == (k + 3) / 4 * 32)
            let want = Naive.block(k: k, rows: rows, order: order) { row, i in src[row * rowStride + i] }
            let got = gathered(k: k) { Kernels.putRows($0, src, rowStride: rowStride, rows: rows, k: k, order: order) }
            guard agree(got, want, "putRows k \(k) rows \(rows) rowStride \(rowStride) \(order)") else { return }
        }
        for _ in 0..<200 {
            let cin = r.chance(0.7) ? r.int(1...5) : r.pick([7, 16, 32]), h = r.int(1...6), w = r.int(1...6)
            let order = r.pick(blockOrders), pixels = r.chance(0.5), rows = r.int(1...4)
            let map = (0..<(cin * h * w)).map { _ in r.value(pixels: pixels) }
            var pos = 0
            while pos < h * w {
                let n = min(rows, h * w - pos), p = pos
                let want = Naive.block(k: 9 * cin, rows: n, order: order) { row, i in
                    Naive.patchValue(map, h: h, w: w, pos: p + row, k: i)
                }
                let got = gathered(k: 9 * cin) { Kernels.putPatches($0, map, cin: cin, h: h, w: w, pos: p, rows: n, order: order) }
                guard agree(got, want, "putPatches cin \(cin) \(h)x\(w) pos \(pos) rows \(n) \(order)") else { return }
                pos += n
            }
        }
        #if arch(x86_64)
        // putFieldBlocks: the fields from the map's zero-bordered copy, 1 ... 8 rows (more than four: the pair's
        // second block blockBytes(k) on), bytes or natural halfwords; nothing written past the pair
        for _ in 0..<200 {
            let cin = r.chance(0.7) ? r.int(1...5) : r.pick([7, 16, 32]), h = r.int(1...6), w = r.int(1...6)
            let halves = r.chance(0.5), pixels = halves && r.chance(0.5), step = r.int(1...8)
            let map = (0..<(cin * h * w)).map { _ in r.value(pixels: pixels) }, k = 9 * cin, bb = Kernels.blockBytes(k: k)
            let bordered = Buffer([UInt8](repeating: 0x33, count: Kernels.borderedBytes(cin: cin, h: h, w: w)))
            Kernels.borderedCopy(map, cin: cin, h: h, w: w, into: bordered.p, rowBytes: w + 2)
            let order: BlockOrder = halves ? .natural : .bytes
            var pos = 0
            while pos < h * w {
                let n = min(step, h * w - pos), p = pos
                func want(_ first: Int, _ count: Int) -> [UInt8] {
                    let words = Naive.block(k: k, rows: count, order: order) { row, i in
                        Naive.patchValue(map, h: h, w: w, pos: p + first + row, k: i)
                    }
                    return Array(words.flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } }.prefix(bb))
                }
                let out = Buffer([UInt8](repeating: 0xA5, count: 2 * bb + 64))
                Kernels.putFieldBlocks(out.raw, bordered.p, cin: cin, h: h, w: w, pos: p, rows: n, halves: halves)
                let expected = want(0, min(n, 4)) + (n > 4 ? want(4, n - 4) : [UInt8](repeating: 0xA5, count: bb))
                    + [UInt8](repeating: 0xA5, count: 64)
                guard agree(out.array, expected, "putFieldBlocks cin \(cin) \(h)x\(w) pos \(pos) rows \(n) \(order)") else { return }
                pos += n
            }
        }
        #endif
    }

    /// BlockDot: `blockDotNeurons` (int8 weights, full range) and `blockDotStream` (int16 weights, full
    /// range) on blocks from `putRowBlocks` / `putPatchBlocks` (pixels or counts, 1 ... 4 rows; on x86-64
    /// also 5 ... 8 rows, a pair of blocks, which only the twins take; weight row
    /// stride >= K) against a naive dot product and the naive neuron (counts or prefix trains; a neuron
    /// per output, one for all, or one per row; thresholds 1 ... 2^29, biases of either sign, shifts
    /// 0 ... 8, L 1 ... 16; the sink's spikes) or stream write (set or add, per-channel or per-token
    /// biases; wrapping int32), in output layouts [outputs][rows], [rows][outputs] and neither step 1. Each case runs this
    /// build's kernel on its block order (the x86-64 twins on x86-64 hosts: byte blocks of counts,
    /// CountBlocksX86.swift, BlockDotX86.swift) and, for four rows or fewer, the portable loop.
    @Test func blockDots() {
        var r = SplitMix(state: 0xD07)
        for _ in 0..<500 {
            let stream = r.chance(0.4), pixels = r.chance(0.3), outputs = r.int(1...12)
            // this build's block order (x86-64: bytes for counts), and the portable loop's
            let order: BlockOrder = stream ? .natural : Kernels.neuronOrder(pixels: pixels)
            let portableOrder: BlockOrder = stream ? .natural : .interleaved
            // the rows' values, gathered by putRows ([rows][K], row stride >= K) or putPatches (3x3 fields)
            // more than four rows: a pair of blocks (x86-64 twins only; the portable loop takes four)
            // (eight rows, a whole pair, often: the neuron sink's `putOctX86`)
            var k = r.fanIn(), rows = Kernels.useX86Twins && r.chance(0.4) ? (r.chance(0.3) ? 8 : r.int(1...8)) : r.int(1...4)
            var values: [[Int64]] = []
            var gather = "rows"
            var blockOf: (BlockOrder) -> Buffer<UInt32>
            if r.chance(0.6) {
                let rowStride = k + r.int(0...3), kk = k, rr = rows
                let src = (0..<(rows * rowStride)).map { _ in r.value(pixels: pixels) }
                values = (0..<rows).map { row in (0..<k).map { Int64(src[row * rowStride + $0]) } }
                blockOf = { order in  // guard words: see blockGathers
                    let block = Buffer([UInt32](repeating: 0, count: (kk + 3) / 4 * 8 * (rr > 4 ? 2 : 1) + 16))
                    Kernels.putRowBlocks(block.raw, src, rowStride: rowStride, rows: rr, k: kk, order: order)
                    return block
                }
            } else {
                let cin = r.chance(0.7) ? r.int(1...4) : r.pick([16, 32]), h = r.int(1...5), w = r.int(1...5)
                k = 9 * cin
                rows = min(rows, h * w)
                let map = (0..<(cin * h * w)).map { _ in r.value(pixels: pixels) }, pos = r.int(0...(h * w - rows))
                values = (0..<rows).map { row in (0..<k).map { Int64(Naive.patchValue(map, h: h, w: w, pos: pos + row, k: $0)) } }
                let kk = k, rr = rows
                blockOf = { order in
                    let block = Buffer([UInt32](repeating: 0, count: (kk + 3) / 4 * 8 * (rr > 4 ? 2 : 1) + 16))
                    Kernels.putPatchBlocks(block.raw, map, cin: cin, h: h, w: w, pos: pos, rows: rr, order: order)
                    return block
                }
                gather = "patches \(h)x\(w) pos \(pos)"
            }
            let block = blockOf(order), portableBlock = order == portableOrder || rows > 4 ? block : blockOf(portableOrder)
            let wstride = k + (r.chance(0.5) ? 0 : r.int(1...7))
            // outputs [outputs][rows] (conv maps, attention values) or [rows][outputs] (tokens, scores), or
            // neither step 1 (the sinks' general stores)
            let (outputStep, rowStep) = r.pick([(1, outputs + r.int(0...3)), (rows + r.int(0...3), 1), (2 * rows + 1, 2)])
            let size = (outputs - 1) * outputStep + (rows - 1) * rowStep + 1 + 8
            let context = "k \(k) wstride \(wstride) outputs \(outputs) rows \(rows) steps \(outputStep), \(rowStep) \(gather)"
            func acc(_ weights: [Int64], _ j: Int, _ row: Int) -> Int64 {
                var a: Int64 = 0
                for i in 0..<k { a += weights[j * wstride + i] * values[row][i] }
                return a
            }
            if stream {
                let weights = (0..<(outputs * wstride)).map { _ in r.weight16() }, w64 = weights.map { Int64($0) }
                let write: StreamWrite = r.chance(0.5) ? .set : .add
                let paramRowStep = r.chance(0.5) ? 0 : outputs + r.int(0...2)  // per-token biases (position embedding)
                let biases = (0...((outputs - 1) + (rows - 1) * paramRowStep)).map { _ in Int32(r.signed(1 << 28)) }
                let old = (0..<size).map { _ in Int16(truncatingIfNeeded: r.next()) }, shift = r.int(0...24)
                var want = old
                for j in 0..<outputs {  // (acc + bias) >> shift in wrapping int32, the low 16 bits stored
                    for row in 0..<rows {
                        let e = j * outputStep + row * rowStep, before: Int32 = write == .set ? 0 : Int32(old[e])
                        let y = Int32(truncatingIfNeeded: acc(w64, j, row) + Int64(biases[j + row * paramRowStep]))
                        want[e] = Int16(truncatingIfNeeded: before &+ (y >> shift))
                    }
                }
                for portable in rows > 4 ? [false] : [false, true] {  // this build's kernel (a twin where there is one), then the portable loop
                    let x = Buffer(old), wb = Buffer(weights), bb = Buffer(biases)
                    let sink = StreamSink(stream: x.p, biases: bb.p, outputStep: outputStep, rowStep: rowStep, paramStep: 1,
                                          paramRowStep: paramRowStep, rows: rows, write: write, shift: Int32(shift))
                    if portable {
                        Kernels.blockDotStreamPortable(wb.p, wstride: wstride, portableBlock.raw, k: k, outputs: outputs, sink)
                    } else {
                        Kernels.blockDotStream(wb.p, wstride: wstride, block.raw, k: k, outputs: outputs, sink)
                    }
                    guard agree(x.array, want, "stream \(write) shift \(shift) paramRowStep \(paramRowStep) portable \(portable) \(context)")
                    else { return }
                }
            } else {
                let weights = (0..<(outputs * wstride)).map { _ in r.weight8() }, w64 = weights.map { Int64($0) }
                let output: NeuronOutput = r.chance(0.5) ? .counts : .prefixTrains
                let levels = output == .prefixTrains ? r.int(1...8) : r.int(1...16)
                // a neuron per output (conv, linear), one for all (attention scores), one per row (attention values)
                let (paramStep, paramRowStep) = r.pick([(1, 0), (0, 0), (0, 1)])
                let layer = r.neurons((outputs - 1) * paramStep + (rows - 1) * paramRowStep + 1, bound: k * 128 * (pixels ? 255 : 16),
                                      levels: levels)
                let start = UInt32(truncatingIfNeeded: r.next())  // the sink adds to its spikes
                var want = [UInt8](repeating: 0xEE, count: size), spikes = start
                for j in 0..<outputs {
                    for row in 0..<rows {
                        let i = j * paramStep + row * paramRowStep
                        let c = Naive.count(acc(w64, j, row), shift: layer.shift, bias: layer.bias[i], theta: layer.theta[i],
                                            levels: levels)
                        want[j * outputStep + row * rowStep] = UInt8(output == .prefixTrains ? (1 << c) - 1 : c)
                        spikes &+= UInt32(c)
                    }
                }
                for portable in rows > 4 ? [false] : [false, true] {
                    let out = Buffer([UInt8](repeating: 0xEE, count: size)), wb = Buffer(weights)
                    let tb = Buffer(layer.theta), bb = Buffer(layer.bias)
                    var sink = NeuronSink(out: out.p, thresholds: tb.p, biases: bb.p, outputStep: outputStep, rowStep: rowStep,
                                          paramStep: paramStep, paramRowStep: paramRowStep, shift: Int32(layer.shift),
                                          levels: Int32(levels), rows: rows, output: output)
                    sink.spikes = start
                    if portable {
                        Kernels.blockDotNeuronsPortable(wb.p, wstride: wstride, portableBlock.raw, k: k, outputs: outputs, &sink)
                    } else {
                        Kernels.blockDotNeurons(wb.p, wstride: wstride, block.raw, k: k, outputs: outputs, order: order, &sink)
                    }
                    let neuron = "\(output) L \(levels) shift \(layer.shift) params \(paramStep), \(paramRowStep) portable \(portable)"
                    guard agree(out.array, want, "neurons \(neuron) \(context)"), agree(sink.spikes, spikes, "spikes \(context)")
                    else { return }
                }
            }
        }
    }

    #if arch(x86_64)
    /// PixelConvX86: `pixelConvX86` (x86-64 hosts: positions as lanes, no blocks) on random pixel maps,
    /// cin 1 ... 4, h 1 ... 12, w 1 ... 20 (every width mod 8: a row's partial last vector), cout
    /// 1 ... 20, full-range int8 weights, a neuron per output channel (counts or prefix trains, shifts
    /// 0 ... 8, L 1 ... 16) against the naive conv and neuron: the output map byte for byte with
    /// sentinels after it, and the spikes.
    @Test func pixelConv() {
        var r = SplitMix(state: 0x91C5)
        for _ in 0..<300 {
            let cin = r.int(1...4), h = r.int(1...12), w = r.chance(0.3) ? r.pick([8, 16, 28]) : r.int(1...20), cout = r.int(1...20)
            let plane = h * w, k = 9 * cin
            let map = (0..<(cin * plane)).map { _ in r.value(pixels: true) }
            let weights = (0..<(cout * k)).map { _ in r.weight8() }
            let output: NeuronOutput = r.chance(0.5) ? .counts : .prefixTrains
            let levels = output == .prefixTrains ? r.int(1...8) : r.int(1...16)
            let layer = r.neurons(cout, bound: k * 128 * 255, levels: levels)
            var want = [UInt8](repeating: 0xEE, count: cout * plane + 8), spikes: UInt32 = 0
            for o in 0..<cout {
                for pos in 0..<plane {
                    var a: Int64 = 0
                    for i in 0..<k { a += Int64(weights[o * k + i]) * Int64(Naive.patchValue(map, h: h, w: w, pos: pos, k: i)) }
                    let c = Naive.count(a, shift: layer.shift, bias: layer.bias[o], theta: layer.theta[o], levels: levels)
                    want[o * plane + pos] = UInt8(output == .prefixTrains ? (1 << c) - 1 : c)
                    spikes &+= UInt32(c)
                }
            }
            let mb = Buffer(map), wb = Buffer(weights), tb = Buffer(layer.theta), bb = Buffer(layer.bias)
            let buffer = Buffer([UInt8](repeating: 0x5A, count: Kernels.pixelConvBytes(cin: cin, h: h, w: w, cout: cout)))
            // the whole map, or bands of rows (docs/FORMAT.md, "Bands") into a band buffer, assembled here
            let band = r.chance(0.5) ? r.int(1...h) : h
            var assembled = want.map { _ in UInt8(0xEE) }, got: UInt32 = 0, y0 = 0
            let context = "pixelConv cin \(cin) \(h)x\(w) cout \(cout) \(output) L \(levels) shift \(layer.shift) band \(band)"
            while y0 < h {
                let y1 = min(y0 + band, h), out = Buffer([UInt8](repeating: 0xEE, count: cout * band * w))
                let sink = NeuronSink(out: out.p, thresholds: tb.p, biases: bb.p, outputStep: band * w, rowStep: 1, paramStep: 1,
                                      paramRowStep: 0, shift: Int32(layer.shift), levels: Int32(levels), rows: 1, output: output)
                got &+= Kernels.pixelConvX86(mb.p, cin: cin, h: h, w: w, weights: wb.p, cout: cout, sink, buffer: buffer.raw,
                                             rows: (y0, y1), laidOut: y0 != 0)
                let bandOut = out.array
                for o in 0..<cout {
                    for y in 0..<band {
                        for x in 0..<w where y0 + y < y1 { assembled[o * plane + (y0 + y) * w + x] = bandOut[o * band * w + y * w + x] }
                        // the band buffer's rows past the band stay untouched
                        for x in 0..<w where y0 + y >= y1 {
                            guard agree(bandOut[o * band * w + y * w + x], 0xEE, "past the band, \(context)") else { return }
                        }
                    }
                }
                y0 = y1
            }
            guard agree(assembled, want, context), agree(got, spikes, "spikes \(context)") else { return }
        }
    }
    #endif

    /// The block dot at the extremes of its inputs: every count 16 (or 15) against every weight -128 or 127
    /// (the x86-64 twin sums byte products in saturating int16 pairs first), over fan-ins up to 515; the
    /// bias brings each exact sum to 5, so any wrapped or saturated sum gives another count.
    @Test func blockDotAtTheLimitsOfCountsAndWeights() {
        let order = Kernels.neuronOrder(pixels: false)
        for k in [7, 8, 63, 64, 65, 127, 128, 129, 512, 515] {
            for weight in [Int8(-128), 127] {
                for count in [UInt8(16), 15] {
                    let src = [UInt8](repeating: count, count: 4 * k)
                    let block = Buffer([UInt32](repeating: 0, count: (k + 3) / 4 * 8 + 16))
                    Kernels.putRows(block.raw, src, rowStride: k, rows: 4, k: k, order: order)
                    let exact = Int32(k) * Int32(count) * Int32(weight)
                    let wb = Buffer([Int8](repeating: weight, count: 2 * k)), tb = Buffer([Int32](repeating: 1, count: 2))
                    let bb = Buffer([Int32](repeating: 5 - exact, count: 2)), out = Buffer([UInt8](repeating: 0xEE, count: 8))
                    var sink = NeuronSink(out: out.p, thresholds: tb.p, biases: bb.p, outputStep: 4, rowStep: 1, paramStep: 1,
                                          paramRowStep: 0, shift: 0, levels: 16, rows: 4, output: .counts)
                    Kernels.blockDotNeurons(wb.p, wstride: k, block.raw, k: k, outputs: 2, order: order, &sink)
                    guard agree(out.array, [UInt8](repeating: 5, count: 8), "k \(k) weight \(weight) count \(count) \(order)")
                    else { return }
                }
            }
        }
    }

    #if arch(x86_64)
    /// The x86-64 neurons' counts (`neuronCounts`: a float32 or float64 division, BlockDotX86.swift) against
    /// the integer neuron at every quotient boundary: a = n theta - 1, n theta, n theta + 1 for n from -2
    /// to L + 2, thresholds from 1 to 2^31 - 1 (around 986,895, where the float32 form ends, and up to
    /// where a double's rounding would first show), the ends of int32.
    @Test func x86NeuronCountsAtQuotientBoundaries() {
        let thetas: [Int32] = [1, 2, 3, 7, 255, 1000, 65_537, (1 << 20) + 1, 986_894, 986_895, 986_896, (1 << 24) + 3,
                               (1 << 30) - 1, 1 << 30, Int32.max - 1, Int32.max]
        for levels: Int32 in [1, 2, 7, 8, 15, 16] {
            for theta in thetas {
                var a: [Int32] = [Int32.min, Int32.min + 1, -1, 0, 1, Int32.max - 1, Int32.max]
                for n in -2...Int64(levels + 2) {
                    for d: Int64 in [-1, 0, 1] {
                        let v = n * Int64(theta) + d
                        if v >= Int64(Int32.min) && v <= Int64(Int32.max) { a.append(Int32(v)) }
                    }
                }
                var i = 0
                while i < a.count {
                    var lanes = SIMD8<Int32>(repeating: 0)
                    for l in 0..<8 { lanes[l] = a[min(i + l, a.count - 1)] }
                    let got = Kernels.neuronCounts(lanes, threshold: SIMD8(repeating: theta), levels: levels)
                    for l in 0..<8 {
                        let want = Int32(Kernels.neuronCount(lanes[l], threshold: theta, levels: levels))
                        guard got[l] == want else {
                            Issue.record("a \(lanes[l]) theta \(theta) levels \(levels): \(got[l]), want \(want)")
                            return
                        }
                    }
                    i += 8
                }
            }
        }
    }
    #endif

    /// DIFNeuron: `difTrain` (T 1 ... 16, every delay 0 ... T, L 1 ... T, strided currents of either
    /// sign) against the DIF loop of SEMANTICS 2; `fireChannels` (conv [T][outputs] and stream-token
    /// [outputs][T] currents, uint8 / uint16 trains at base + j * step) and `streamNeuron` ([N][D], fused
    /// and the count path's step sums; counts and prefix trains; this build's kernel, the x86-64 twin
    /// on x86-64, and the portable loop) against the naive neurons: every output byte and the returned spikes.
    @Test func difNeurons() {
        var r = SplitMix(state: 0xD1F)
        for _ in 0..<800 {
            let steps = r.int(1...16), delay = r.int(0...steps), levels = r.int(1...steps), stride = r.int(1...4)
            let e = r.int(0...16), current = (0..<steps).map { _ in Int64(r.signed(1 << e)) }
            let layer = r.neurons(1, bound: steps << e, levels: levels)
            let cur = Buffer((0..<(steps * stride)).map { _ in Int32(r.signed(1 << 30)) })  // garbage between the steps
            for t in 0..<steps { cur.p[t * stride] = Int32(current[t]) }
            let got = Kernels.difTrain(cur.p, stride: stride, steps: steps, delay: delay, shift: Int32(layer.shift),
                                       bias: layer.bias[0], threshold: layer.theta[0], levels: Int32(levels))
            let want = Naive.dif(current, delay: delay, shift: layer.shift, bias: layer.bias[0], theta: layer.theta[0], levels: levels)
            guard agree(got, want, "difTrain T \(steps) D \(delay) L \(levels) stride \(stride) \(layer) I \(current)") else { return }
        }
        for _ in 0..<300 {
            let steps = r.int(1...16), delay = r.int(0...steps), levels = r.int(1...steps), outputs = r.int(1...12)
            let width = r.width(steps: steps), token = r.chance(0.5), base = r.int(0...3), step = r.int(1...3)
            let e = r.int(0...16), layer = r.neurons(outputs, bound: steps << e, levels: levels)
            let current = (0..<outputs).map { _ in (0..<steps).map { _ in Int64(r.signed(1 << e)) } }  // [j][t]
            let cur = Buffer([Int32](repeating: 0, count: steps * outputs))
            for j in 0..<outputs { for t in 0..<steps { cur.p[token ? j * steps + t : t * outputs + j] = Int32(current[j][t]) } }
            let elements = base + (outputs - 1) * step + 1 + 2
            var want = [UInt8](repeating: 0xEE, count: elements * width.bytes), spikes = 0
            for j in 0..<outputs {
                let train = Naive.dif(current[j], delay: delay, shift: layer.shift, bias: layer.bias[j], theta: layer.theta[j],
                                      levels: levels)
                Naive.put(&want, width, base + j * step, train)
                spikes += train.nonzeroBitCount
            }
            let out = Buffer([UInt8](repeating: 0xEE, count: elements * width.bytes))
            let tb = Buffer(layer.theta), bb = Buffer(layer.bias)
            let got = Kernels.fireChannels(cur.p, outputs: outputs, steps: steps, delay: delay, shift: Int32(layer.shift),
                                           thresholds: tb.p, biases: bb.p, levels: Int32(levels), trains: out.raw, width: width,
                                           base: base, step: step, channelStride: token ? steps : 1, stepStride: token ? 1 : outputs)
            let context = "fireChannels T \(steps) D \(delay) L \(levels) outputs \(outputs) \(width) token \(token) base \(base) step \(step)"
            guard agree(out.array, want, context), agree(got, UInt32(spikes), context) else { return }
        }
        for _ in 0..<300 {
            let n = r.int(1...5), d = r.chance(0.7) ? r.int(1...12) : r.pick([16, 21, 64])
            let output: NeuronOutput = r.chance(0.5) ? .counts : .prefixTrains
            let levels = output == .prefixTrains ? r.int(1...8) : r.int(1...16), e = r.int(0...15)
            let x = (0..<(n * d)).map { _ in Int16(truncatingIfNeeded: r.signed(1 << e)) }
            let layer = r.neurons(d, bound: 1 << e, levels: levels)
            var want = [UInt8](repeating: 0xEE, count: n * d + 4), spikes = 0
            for t in 0..<n {
                for j in 0..<d {
                    let c = Naive.count(Int64(x[t * d + j]), shift: layer.shift, bias: layer.bias[j], theta: layer.theta[j],
                                        levels: levels)
                    want[t * d + j] = UInt8(output == .prefixTrains ? (1 << c) - 1 : c)
                    spikes += c
                }
            }
            for portable in [false, true] {  // this build's kernel (x86-64: its twin), then the portable loop
                let xb = Buffer(x), out = Buffer([UInt8](repeating: 0xEE, count: n * d + 4))
                let tb = Buffer(layer.theta), bb = Buffer(layer.bias)
                let got = portable
                    ? Kernels.streamNeuronPortable(xb.p, tokens: n, width: d, shift: Int32(layer.shift), thresholds: tb.p,
                                                   biases: bb.p, levels: Int32(levels), output: output, out.p)
                    : Kernels.streamNeuron(xb.p, tokens: n, width: d, shift: Int32(layer.shift), thresholds: tb.p,
                                           biases: bb.p, levels: Int32(levels), output: output, out.p)
                let context = "streamNeuron n \(n) d \(d) \(output) L \(levels) portable \(portable)"
                guard agree(out.array, want, context), agree(got, UInt32(spikes), context) else { return }
            }
        }
    }

    /// EventAccumulation: `listRow` (0 ... 288 inputs, uint8 trains at any byte address, uint16) and
    /// `listPatch` (every position of maps down to 1 x 1, zero padding) list exactly the spiking inputs
    /// in order; `eventSynapticOps` (any trains and prefix trains, int8 / int16 weights, outputs
    /// 1 ... 20, weight row stride >= K) adds each column at the right steps and returns spikes x
    /// outputs; `suffixSteps` turns its prefix slots into suffix sums; `streamChannels` (set / add,
    /// step currents or prefix slots, odd and even outputs) writes x[(base + j) T + t] and nothing else.
    @Test func eventAccumulation() {
        var r = SplitMix(state: 0xE7E)
        for _ in 0..<300 {
            let count = r.chance(0.8) ? r.int(0...40) : r.pick([64, 128, 144, 288])
            let steps = r.int(1...16), width = r.width(steps: steps), silent = r.pick([0.0, 0.5, 0.9, 1.0])
            let trains = (0..<count).map { _ in r.train(steps: steps, silent: silent) }
            let offset = width == .bits8 ? r.int(0...3) : 0
            let bytes = Buffer([UInt8](repeating: 0x77, count: offset) + Naive.bytes(trains, width))
            let list = Buffer([UInt32](repeating: 0xDEAD_BEEF, count: count + 1))
            let n = Kernels.listRow(bytes.raw + offset, width: width, count: count, list.p)
            var want: [UInt32] = []
            for (k, t) in trains.enumerated() where t != 0 { want.append(UInt32(k) << 16 | t) }
            want += [UInt32](repeating: 0xDEAD_BEEF, count: count + 1 - want.count)
            let context = "listRow count \(count) \(width) offset \(offset)"
            guard agree(n, trains.filter { $0 != 0 }.count, context), agree(list.array, want, context) else { return }
        }
        for _ in 0..<150 {
            let cin = r.int(1...6), h = r.int(1...5), w = r.int(1...5), steps = r.int(1...16), width = r.width(steps: steps)
            let trains = (0..<(cin * h * w)).map { _ in r.train(steps: steps, silent: 0.4) }
            let bytes = Buffer(Naive.bytes(trains, width))
            for pos in 0..<(h * w) {
                var want: [UInt32] = []
                for i in 0..<cin {
                    for dy in 0..<3 {
                        for dx in 0..<3 {
                            let y = pos / w + dy - 1, x = pos % w + dx - 1
                            guard y >= 0, y < h, x >= 0, x < w, trains[(i * h + y) * w + x] != 0 else { continue }
                            want.append(UInt32(i * 9 + dy * 3 + dx) << 16 | trains[(i * h + y) * w + x])
                        }
                    }
                }
                let n = want.count
                want += [UInt32](repeating: 0xDEAD_BEEF, count: 9 * cin + 1 - n)
                let list = Buffer([UInt32](repeating: 0xDEAD_BEEF, count: 9 * cin + 1))
                let got = Kernels.listPatch(bytes.raw, width: width, cin: cin, h: h, w: w, pos: pos, list.p)
                let context = "listPatch cin \(cin) \(h)x\(w) pos \(pos) \(width)"
                guard agree(got, n, context), agree(list.array, want, context) else { return }
            }
        }
        for _ in 0..<400 {
            let k = r.fanIn(), outputs = r.int(1...20), steps = r.int(1...16), wstride = k + (r.chance(0.5) ? 0 : r.int(1...5))
            let trains: InputTrains = r.chance(0.5) ? .any : .prefix, wide = r.chance(0.5), active = r.pick([0.1, 0.5, 1.0])
            let w8 = wide ? [] : (0..<(outputs * wstride)).map { _ in r.weight8() }
            let w16 = wide ? (0..<(outputs * wstride)).map { _ in r.weight16() } : []
            let weights = wide ? w16.map { Int64($0) } : w8.map { Int64($0) }
            var list: [UInt32] = []
            for input in 0..<k where r.chance(active) {
                let train = trains == .prefix ? Naive.prefix(r.int(1...steps)) : r.train(steps: steps, silent: 0)
                list.append(UInt32(input) << 16 | train)
            }
            let start = (0..<(steps * outputs)).map { _ in Int32(r.signed(1 << 20)) }
            var want = start.map { Int64($0) }, synapticOps = 0
            for entry in list {
                let input = Int(entry >> 16), train = entry & 0xFFFF, spikes = train.nonzeroBitCount
                // any trains: a column per spike; prefix trains: the column once, at the last spike
                let at = trains == .prefix ? [spikes - 1] : (0..<steps).filter { train >> UInt32($0) & 1 == 1 }
                for t in at { for j in 0..<outputs { want[t * outputs + j] += weights[j * wstride + input] } }
                synapticOps += spikes * outputs
            }
            let cur = Buffer(start), lb = Buffer(list), b8 = Buffer(w8), b16 = Buffer(w16)
            let got = Kernels.eventSynapticOps(lb.p, count: list.count, weights: wide ? b16.raw : b8.raw, width: wide ? .int16 : .int8,
                                               wstride: wstride, outputs: outputs, cur.p, trains: trains)
            let context = "eventSynapticOps \(trains) k \(k) outputs \(outputs) T \(steps) wide \(wide) entries \(list.count)"
            guard agree(cur.array, want.map { Int32($0) }, context), agree(got, UInt32(synapticOps), context) else { return }
            if trains == .prefix {  // the step currents: slot s counts for every step t <= s
                var suffix = want
                for t in 0..<steps { for j in 0..<outputs { suffix[t * outputs + j] = (t..<steps).reduce(0) { $0 + want[$1 * outputs + j] } } }
                Kernels.suffixSteps(cur.p, steps: steps, outputs: outputs)
                guard agree(cur.array, suffix.map { Int32($0) }, "suffixSteps T \(steps) outputs \(outputs)") else { return }
            }
        }
        for _ in 0..<300 {
            let outputs = r.int(1...13), steps = r.int(1...16), base = r.int(0...3), extra = r.int(0...2)
            let write: StreamWrite = r.chance(0.5) ? .set : .add, prefix = r.chance(0.5), shift = r.int(0...24)
            let cur = (0..<(steps * outputs)).map { _ in Int32(r.signed(1 << 24)) }
            let bias = (0..<outputs).map { _ in Int32(r.signed(1 << 24)) }
            let old = (0..<((base + outputs + extra) * steps)).map { _ in Int16(truncatingIfNeeded: r.next()) }
            var want = old
            for j in 0..<outputs {
                // P[t] = bias + I[0] + ... + I[t]; step t gets floor(P[t] / 2^s) - floor(P[t-1] / 2^s)
                var p = Int64(bias[j]), last: Int64 = 0
                for t in 0..<steps {
                    // I[t]: the step current, or the suffix sum of the prefix slots
                    p += prefix ? (t..<steps).reduce(Int64(0)) { $0 + Int64(cur[$1 * outputs + j]) } : Int64(cur[t * outputs + j])
                    let v = Int64(Int32(truncatingIfNeeded: p) >> shift), e = (base + j) * steps + t
                    want[e] = Int16(truncatingIfNeeded: (write == .set ? 0 : Int64(want[e])) + v - last)
                    last = v
                }
            }
            let cb = Buffer(cur), x = Buffer(old), bb = Buffer(bias)
            Kernels.streamChannels(cb.p, outputs: outputs, steps: steps, x.p, base: base, biases: bb.p, write: write, prefix: prefix,
                                   shift: Int32(shift))
            guard agree(x.array, want, "streamChannels \(write) prefix \(prefix) shift \(shift) outputs \(outputs) T \(steps) base \(base)")
            else { return }
        }
    }

    /// Attention, uint8 trains: the lane table `trainLanes` holds what its doc comment says for all 256
    /// trains, and `listNeuronsLanes` (a pair's currents in lanes of four bits) fires, for
    /// each output m, the naive decomposed currents of the list against the trains at b + m * step through
    /// the naive DIF neuron, and counts `listProducts`' additions: T 1 ... 8, every delay, lists of 0 ... 60
    /// entries (past the 17 a byte lane holds, so blocks are added), one neuron for all outputs or one
    /// each, shifts 0 ... 8 and 20 ... 23 (where the silent-neuron check is skipped), biases of either sign.
    @Test func attentionLanes() {
        var wrong = 0  // the table, from its definition: lane t of the low word 15 * bit t, of the high word the spikes through t
        for x in 0..<256 {
            var masks: UInt64 = 0, counts: UInt64 = 0
            for t in 0..<8 {
                masks |= UInt64(15 * ((x >> t) & 1)) << (4 * t)
                counts |= UInt64((x & ((2 << t) - 1)).nonzeroBitCount) << (4 * t)
            }
            if trainLanes[x] != counts << 32 | masks { wrong += 1 }
        }
        #expect(wrong == 0)
        var r = SplitMix(state: 0x1A4E5)
        for round in 0..<500 {
            let steps = r.int(1...8), delay = r.int(0...steps), levels = r.int(1...steps), outputs = r.int(1...6)
            let wide = round % 5 == 0  // a large shift: short lists keep the sums inside int32
            let entries = wide ? r.int(0...2) : r.pick([r.int(0...17), r.int(18...60)])
            let channels = max(1, entries + r.int(0...3)), step = channels + r.int(0...2)
            let list = (0..<entries).map { _ in UInt32(r.int(0...(channels - 1))) << 16 | r.train(steps: steps, silent: 0) }
            let b = (0..<(outputs * step)).map { _ in r.train(steps: steps, silent: 0.4) }
            let shared = r.chance(0.5)
            var layer = r.neurons(shared ? 1 : outputs, bound: max(1, entries * 15 * steps), levels: levels)
            if wide { layer.shift = r.int(20...23) }
            var want = [UInt8](repeating: 0, count: outputs), spikes = 0, additions: UInt32 = 0
            for m in 0..<outputs {
                var current = [Int64](repeating: 0, count: steps)
                for entry in list {
                    let x = entry & 0xFFFF, y = b[m * step + Int(entry >> 16)]
                    for t in 0..<steps {
                        current[t] += Naive.product(x, y, at: t)
                    }
                    if y != 0 { additions &+= UInt32(x.nonzeroBitCount + (y & ~1).nonzeroBitCount) }
                }
                let p = shared ? 0 : m
                let t = Naive.dif(current, delay: delay, shift: layer.shift, bias: layer.bias[p], theta: layer.theta[p], levels: levels)
                want[m] = UInt8(t)
                spikes += t.nonzeroBitCount
            }
            let lb = Buffer(list), bb = Buffer(b.map { UInt8($0) }), out = Buffer([UInt8](repeating: 0xEE, count: outputs + 4))
            let tb = Buffer(layer.theta), pb = Buffer(layer.bias), cur = Buffer([Int32](repeating: 0x5A5A, count: 16))
            let start = UInt32(truncatingIfNeeded: r.next())
            var ops = start
            let got = Kernels.listNeuronsLanes(lb.p, count: entries, bb.raw, step: step, outputs: outputs, tb.p, pb.p,
                                               paramStep: shared ? 0 : 1, shift: Int32(layer.shift), out.raw, levels: Int32(levels),
                                               steps: steps, delay: delay, cur.p, &ops)
            let context = "listNeuronsLanes T \(steps) D \(delay) L \(levels) entries \(entries) outputs \(outputs) shared \(shared) \(layer)"
            guard agree(out.array, want + [UInt8](repeating: 0xEE, count: 4), context), agree(got, UInt32(spikes), context),
                  agree(ops, start &+ additions, context)
            else { return }
        }
    }

    /// Attention: `listProducts` (uint8 / uint16 trains, strided b, silent entries) adds
    /// a_t B_t + A_{t-1} b_t per step and counts a's spikes and b's after step 0 for pairs where both
    /// spike; `attentionEvents` (the pair, T 1 ... 16, every delay, the output over q or apart) fires the
    /// naive decomposed currents of the scores, then of the values against them, through the naive DIF
    /// neuron; `pairSynapticOps` (the runtime's scores and values layouts and random sizes and strides) equals the
    /// pair-by-pair sum of a + b - 1 over pairs of nonzero counts.
    @Test func attention() {
        var r = SplitMix(state: 0xA77)
        for _ in 0..<400 {
            let steps = r.int(1...16), width = r.width(steps: steps), channels = r.int(1...8), bstride = r.int(1...3)
            let b = (0..<(channels * bstride)).map { _ in r.train(steps: steps, silent: 0.3) }
            var list: [UInt32] = []
            for c in 0..<channels where r.chance(0.7) { list.append(UInt32(c) << 16 | r.train(steps: steps, silent: 0.2)) }
            let start = (0..<16).map { _ in Int32(r.signed(1000)) }
            var want = start.map { Int64($0) }, additions = 0
            for entry in list {
                let x = entry & 0xFFFF, y = b[Int(entry >> 16) * bstride]
                guard x != 0 && y != 0 else { continue }
                for t in 0..<steps {
                    want[t] += Naive.product(x, y, at: t)
                }
                additions += x.nonzeroBitCount + (y & ~1).nonzeroBitCount
            }
            let lb = Buffer(list), bb = Buffer(Naive.bytes(b, width)), cur = Buffer(start)
            let got = Kernels.listProducts(lb.p, count: list.count, bb.raw, bstride: bstride, width: width, cur.p)
            let context = "listProducts T \(steps) \(width) entries \(list.count) bstride \(bstride)"
            guard agree(cur.array, want.map { Int32($0) }, context), agree(got, UInt32(additions), context) else { return }
        }
        for _ in 0..<200 {
            let n = r.int(1...5), heads = r.int(1...3), hd = r.int(1...4), d = heads * hd
            let steps = r.int(1...16), delay = r.int(0...steps), levels = r.int(1...steps), width = r.width(steps: steps)
            let qs = (0..<(n * d)).map { _ in r.train(steps: steps, silent: 0.3) }
            let ks = (0..<(n * d)).map { _ in r.train(steps: steps, silent: 0.3) }
            let vs = (0..<(n * d)).map { _ in r.train(steps: steps, silent: 0.3) }
            let sl = r.neurons(heads, bound: hd * steps * steps, levels: levels)
            let vl = r.neurons(d, bound: n * steps * steps, levels: levels)
            let inPlace = r.chance(0.5)  // the output over q, as the packer plans it
            /// Fires the naive decomposed currents of the pairs (a, b) through the naive DIF neuron.
            func fire(_ pairs: [(UInt32, UInt32)], _ layer: Layer, _ p: Int,
                      _ ops: inout UInt32) -> UInt32 {
                var current = [Int64](repeating: 0, count: steps)
                for (a, b) in pairs {
                    for t in 0..<steps {
                        current[t] += Naive.product(a, b, at: t)
                    }
                    if a != 0 && b != 0 { ops &+= UInt32(a.nonzeroBitCount + (b & ~1).nonzeroBitCount) }
                }
                return Naive.dif(current, delay: delay, shift: layer.shift, bias: layer.bias[p], theta: layer.theta[p], levels: levels)
            }
            var a = [UInt32](repeating: 0, count: heads * n * n), want = [UInt32](repeating: 0, count: n * d)
            var spikes = (0, 0)
            let start = (UInt32(truncatingIfNeeded: r.next()), UInt32(truncatingIfNeeded: r.next()))
            var ops = start
            for h in 0..<heads {
                for i in 0..<n {
                    for j in 0..<n {
                        let pairs = (0..<hd).map { c in (qs[i * d + h * hd + c], ks[j * d + h * hd + c]) }
                        a[(h * n + i) * n + j] = fire(pairs, sl, h, &ops.0)
                        spikes.0 += a[(h * n + i) * n + j].nonzeroBitCount
                    }
                }
            }
            for h in 0..<heads {
                for i in 0..<n {
                    for m in 0..<hd {
                        let c = h * hd + m, pairs = (0..<n).map { j in (a[(h * n + i) * n + j], vs[j * d + c]) }
                        want[i * d + c] = fire(pairs, vl, c, &ops.1)
                        spikes.1 += want[i * d + c].nonzeroBitCount
                    }
                }
            }
            let qb = Buffer(Naive.bytes(qs, width) + [UInt8](repeating: 0xEE, count: 4))
            let vT = (0..<(d * n)).map { vs[($0 % n) * d + $0 / n] }  // v channel-major: [D][N]
            let kb = Buffer(Naive.bytes(ks, width)), vb = Buffer(Naive.bytes(vT, width))
            let out = inPlace ? qb : Buffer([UInt8](repeating: 0xEE, count: want.count * width.bytes + 4))
            let stb = Buffer(sl.theta), spb = Buffer(sl.bias), vtb = Buffer(vl.theta), vpb = Buffer(vl.bias)
            let scratch = Buffer([UInt32](repeating: 0, count: 16 + ((max(n, hd) + 3) & ~3) + (n * width.bytes + 3) / 4))
            var scoresOps = start.0, valuesOps = start.1
            let got = Kernels.attentionEvents(q: qb.raw, k: kb.raw, v: vb.raw, out.raw, width: width, tokens: n, width: d,
                                              heads: heads, scores: (UnsafePointer(stb.p), UnsafePointer(spb.p), Int32(sl.shift)),
                                              values: (UnsafePointer(vtb.p), UnsafePointer(vpb.p), Int32(vl.shift)), levels: Int32(levels), steps: steps,
                                              delay: delay, scratch: scratch.p, scoresOps: &scoresOps, valuesOps: &valuesOps)
            let context = "attentionEvents n \(n) heads \(heads) hd \(hd) T \(steps) D \(delay) L \(levels) \(width) in place \(inPlace)"
            guard agree(out.array, Naive.bytes(want, width) + [UInt8](repeating: 0xEE, count: 4), context),
                  agree(got.0, UInt32(spikes.0), context), agree(got.1, UInt32(spikes.1), context),
                  agree(scoresOps, ops.0, context), agree(valuesOps, ops.1, context)
            else { return }
        }
        for _ in 0..<300 {
            var groups = 1, sx = 1, nx = 1, sy = 1, ny = 1
            // sizes past 8 groups and not multiples of 8: the x86-64 twin's vectors and its tail
            let n = r.int(1...40), heads = r.int(1...3), hd = r.int(1...12), d = heads * hd
            switch r.int(0...2) {
            case 0: (groups, sx, nx, sy, ny) = (d, d, n, d, n)  // scores: q, k [n][d], a group per channel
            case 1:  // values: a block of scores rows [rows][n] and v's head rows [hd][n] (channel-major); a group per key
                (groups, sx, nx, sy, ny) = (n, n, r.int(1...4), n, hd)
            default:
                (groups, nx, ny) = (r.int(1...20), r.int(0...6), r.int(0...6))
                (sx, sy) = (r.int(1...24), r.int(1...24))
            }
            let xs = (0..<((groups - 1) + max(nx - 1, 0) * sx + 1)).map { _ in r.value(pixels: false) }
            let ys = (0..<((groups - 1) + max(ny - 1, 0) * sy + 1)).map { _ in r.value(pixels: false) }
            var want = 0
            for v in 0..<groups {
                for i in 0..<nx {
                    for j in 0..<ny {
                        let a = Int(xs[v + i * sx]), b = Int(ys[v + j * sy])
                        if a > 0 && b > 0 { want += a + b - 1 }
                    }
                }
            }
            let got = Kernels.pairSynapticOps(xs, ys, groups: groups, sx: sx, nx: nx, sy: sy, ny: ny)
            let portable = Kernels.pairSynapticOpsPortable(xs, ys, groups: groups, sx: sx, nx: nx, sy: sy, ny: ny)
            guard agree(got, UInt32(want), "pairSynapticOps \((groups, sx, nx, sy, ny))"),
                  agree(portable, UInt32(want), "pairSynapticOpsPortable \((groups, sx, nx, sy, ny))") else { return }
            #if arch(x86_64)
            // the x rows in blocks of 1 ... 8, their stats summed per group, then paired with y once
            let sums = Buffer([UInt32](repeating: 0, count: groups)), spiking = Buffer([UInt32](repeating: 0, count: groups))
            var row = 0
            while row < nx {
                let rows = min(r.int(1...8), nx - row)
                xs.withUnsafeBufferPointer {
                    Kernels.addCountStatsX86($0.baseAddress! + row * sx, groups: groups, sx: sx, nx: rows, sums: sums.p, spiking: spiking.p)
                }
                row += rows
            }
            let fromStats = Kernels.pairSynapticOpsFromStatsX86(sums.p, spiking.p, ys, groups: groups, sy: sy, ny: ny)
            guard agree(fromStats, UInt32(want), "pairSynapticOpsFromStatsX86 \((groups, sx, nx, sy, ny))") else { return }
            #endif
        }
    }

    /// Pooling: `maxPool` with pool 2 (2x2 / 2) and 3 (3x3 / 2, padding 1) on maps 1 ... 7 high and
    /// 1 ... 7 or 16 ... 40 wide (odd sizes: clipped windows; on x86-64 the twin's overlapping last
    /// chunk), for counts (the maximum), prefix trains (the largest train)
    /// and spike trains (a spike at t when the largest running count rises; uint8 / uint16, T 1 ... 16):
    /// the output map and the returned spikes; channels apart (`inPlane`, `outPlane` past a map, as a band
    /// unit's pool reads and writes, docs/FORMAT.md "Bands"), the bytes between them untouched.
    @Test func pooling() {
        var r = SplitMix(state: 0x9001)
        for _ in 0..<400 {
            let values: PoolValues = r.pick([.counts, .prefixTrains, .spikeTrains]), pool = r.pick([2, 3]), pad = pool == 3 ? 1 : 0
            // wide maps too: the x86-64 twin takes pool 2 of uint8 values eight outputs at a time
            let c = r.int(1...3), h = r.int(1...7), w = r.chance(0.3) ? r.int(16...40) : r.int(1...7)
            let oh = pool == 2 ? h / 2 : (h - 1) / 2 + 1, ow = pool == 2 ? w / 2 : (w - 1) / 2 + 1
            let steps = values == .spikeTrains ? r.int(1...16) : 8
            let width: TrainWidth = values == .spikeTrains ? r.width(steps: steps) : .bits8
            let input: [UInt32] = (0..<(c * h * w)).map { _ in
                switch values {
                case .counts: UInt32(r.value(pixels: false))
                case .prefixTrains: Naive.prefix(r.chance(0.3) ? 0 : r.int(1...8))
                case .spikeTrains: r.train(steps: steps, silent: 0.3)
                }
            }
            var want: [UInt32] = [], spikes = 0
            for ch in 0..<c {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var cells: [UInt32] = []  // the window clipped to the map
                        for y in (oy * 2 - pad)..<(oy * 2 - pad + pool) where y >= 0 && y < h {
                            for x in (ox * 2 - pad)..<(ox * 2 - pad + pool) where x >= 0 && x < w { cells.append(input[(ch * h + y) * w + x]) }
                        }
                        var m: UInt32 = 0
                        if values == .spikeTrains {
                            var previous: Int64 = 0
                            for t in 0..<steps {
                                let largest = cells.map { Naive.running($0, through: t) }.max()!
                                if largest > previous { m |= 1 << UInt32(t) }
                                previous = largest
                            }
                        } else {
                            m = cells.max()!
                        }
                        want.append(m)
                        spikes += values == .counts ? Int(m) : m.nonzeroBitCount
                    }
                }
            }
            let inGap = r.chance(0.4) ? r.int(1...9) : 0, outGap = r.chance(0.4) ? r.int(1...9) : 0
            var spaced: [UInt32] = [], expected: [UInt8] = []
            for ch in 0..<c {
                spaced += input[(ch * h * w)..<((ch + 1) * h * w)] + (0..<inGap).map { _ in UInt32(r.int(0...255)) }
                expected += Naive.bytes(Array(want[(ch * oh * ow)..<((ch + 1) * oh * ow)]), width)
                    + [UInt8](repeating: 0xEE, count: outGap * width.bytes)
            }
            let ib = Buffer(Naive.bytes(spaced, width)), out = Buffer([UInt8](repeating: 0xEE, count: expected.count + 4))
            let got = Kernels.maxPool(ib.raw, values, width: width, c: c, h: h, w: w, pool: pool, out.raw, oh: oh, ow: ow, steps: steps,
                                      inPlane: h * w + inGap, outPlane: oh * ow + outGap)
            let context = "maxPool \(values) pool \(pool) c \(c) \(h)x\(w) T \(steps) \(width) gaps \(inGap) \(outGap)"
            guard agree(out.array, expected + [UInt8](repeating: 0xEE, count: 4), context),
                  agree(got, UInt32(spikes), context)
            else { return }
        }
    }

    /// Classifier: logits[j] = bias[j] + sum_c w[j][c] S_c with S_c channel c's counts (uint8, whatever
    /// the train width) or spikes (uint8 / uint16 trains) summed over the tokens; int8 weights, full
    /// range; returns sum_c S_c; writes only the `classes` logits.
    @Test func classifier() {
        var r = SplitMix(state: 0xC1A5)
        for _ in 0..<300 {
            let values: ClassifierInput = r.chance(0.5) ? .counts : .spikeTrains
            let n = r.chance(0.2) ? r.int(40...70) : r.int(1...6), d = r.int(1...40), classes = r.int(1...12), steps = r.int(1...16)
            let width: TrainWidth = values == .counts ? r.pick([.bits8, .bits16]) : r.width(steps: steps)
            let input = (0..<(n * d)).map { _ in values == .counts ? UInt32(r.value(pixels: false)) : r.train(steps: steps, silent: 0.3) }
            let weights = (0..<(classes * d)).map { _ in r.weight8() }, bias = (0..<classes).map { _ in Int32(r.signed(1 << 24)) }
            var want = bias.map { Int64($0) } + [0x5A5A, 0x5A5A], total = 0
            for c in 0..<d {
                var s = 0
                for t in 0..<n { s += values == .counts ? Int(input[t * d + c]) : input[t * d + c].nonzeroBitCount }
                total += s
                for j in 0..<classes { want[j] += Int64(weights[j * d + c]) * Int64(s) }
            }
            let ib = Buffer(Naive.bytes(input, values == .counts ? .bits8 : width)), wb = Buffer(weights), bb = Buffer(bias)
            let logits = Buffer([Int32](repeating: 0x5A5A, count: classes + 2))
            let got = Kernels.classifier(ib.raw, values, width: width, tokens: n, width: d, weights: wb.p, biases: bb.p,
                                         classes: classes, logits.p)
            let context = "classifier \(values) \(width) n \(n) d \(d) classes \(classes)"
            guard agree(logits.array, want.map { Int32($0) }, context), agree(got, UInt32(total), context) else { return }
        }
    }

    /// CountPath: `trainsToCounts` (any uint8 trains, n 0 ... 130 at any byte address: on x86-64 the
    /// twins' 32-byte vectors and their tails), `countsToTrains`
    /// and back (counts 0 ... 8), `countsToTrains16` (counts 0 ... 16 widened in place) and `windowSum` and its
    /// x86-64 twin (each count times the 3x3 windows holding it, maps 1 ... 16 wide) against direct formulas; nothing
    /// past n is touched.
    @Test func countPath() {
        var r = SplitMix(state: 0xC0C0)
        let fence = [UInt8](repeating: 0xEE, count: 4)
        for _ in 0..<400 {
            let n = r.chance(0.5) ? r.int(0...41) : r.int(42...130), offset = r.int(0...3), lead = [UInt8](repeating: 0x77, count: offset)
            let trains = (0..<n).map { _ in UInt8(truncatingIfNeeded: r.next()) }
            let t = Buffer(lead + trains + fence)
            let sum = Kernels.trainsToCounts(t.p + offset, count: n)
            guard agree(t.array, lead + trains.map { UInt8($0.nonzeroBitCount) } + fence, "trainsToCounts n \(n) offset \(offset)"),
                  agree(sum, UInt32(trains.reduce(0) { $0 + $1.nonzeroBitCount }), "trainsToCounts sum n \(n)")
            else { return }

            let counts = (0..<n).map { _ in UInt8(r.int(0...8)) }
            let c = Buffer(lead + counts + fence)
            Kernels.countsToTrains(c.p + offset, count: n)
            guard agree(c.array, lead + counts.map { UInt8((1 << Int($0)) - 1) } + fence, "countsToTrains n \(n) offset \(offset)")
            else { return }
            let back = Kernels.trainsToCounts(c.p + offset, count: n)
            guard agree(c.array, lead + counts + fence, "round trip n \(n)"),
                  agree(back, UInt32(counts.reduce(0) { $0 + Int($1) }), "round trip sum n \(n)")
            else { return }

            let counts16 = (0..<n).map { _ in UInt8(r.int(0...16)) }
            let c16 = Buffer(counts16 + [UInt8](repeating: 0xEE, count: n) + fence)
            Kernels.countsToTrains16(c16.raw, count: n)
            let trains16 = counts16.map { UInt32((1 << Int($0)) - 1) }
            guard agree(c16.array, Naive.bytes(trains16, .bits16) + fence, "countsToTrains16 n \(n)") else { return }

            let ch = r.int(1...4), h = r.int(1...(r.chance(0.3) ? 16 : 7)), w = r.int(1...(r.chance(0.3) ? 16 : 7)), pixels = r.chance(0.2)
            let map = (0..<(ch * h * w)).map { _ in r.value(pixels: pixels) }
            var windows = 0  // every 3x3 window (zero padding) adds the counts it holds
            for i in 0..<ch {
                for oy in 0..<h {
                    for ox in 0..<w {
                        for y in (oy - 1)...(oy + 1) where y >= 0 && y < h {
                            for x in (ox - 1)...(ox + 1) where x >= 0 && x < w { windows += Int(map[(i * h + y) * w + x]) }
                        }
                    }
                }
            }
            guard agree(Kernels.windowSum(map, c: ch, h: h, w: w), UInt32(windows), "windowSum c \(ch) \(h)x\(w)") else { return }
            #if arch(x86_64)
            let buffer = Buffer([UInt8](repeating: 0xA5, count: ch * h * w))
            guard agree(Kernels.windowSumX86(map, c: ch, h: h, w: w, buffer: buffer.raw), UInt32(windows),
                        "windowSumX86 c \(ch) \(h)x\(w)") else { return }
            #endif
        }
    }
}

// MARK: - Naive reference (from the doc comments and docs/SEMANTICS.md)

fileprivate enum Naive {
    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// SEMANTICS 2, fused: clip(floor((acc 2^k + beta + floor(theta / 2)) / theta), 0, L).
    static func count(_ acc: Int64, shift: Int, bias: Int32, theta: Int32, levels: Int) -> Int {
        let th = Int64(theta), a = acc * (Int64(1) << shift) + Int64(bias) + th / 2
        return Int(min(max(floorDiv(a, th), 0), Int64(levels)))
    }

    /// SEMANTICS 2, spiking (DIF, delay D): I[t] = current[t] 2^k (+ beta at t = 0); the membrane
    /// starts at floor(theta / 2), fires from tau = D on, at most L spikes, soft reset.
    static func dif(_ current: [Int64], delay: Int, shift: Int, bias: Int32, theta: Int32, levels: Int) -> UInt32 {
        let steps = current.count, th = Int64(theta)
        var v = th / 2, emitted = 0, train: UInt32 = 0
        for tau in 0..<(steps + delay) {
            if tau < steps { v += current[tau] * (Int64(1) << shift) + (tau == 0 ? Int64(bias) : 0) }
            if tau >= delay && v >= th && emitted < levels {
                train |= 1 << UInt32(tau - delay)
                v -= th
                emitted += 1
            }
        }
        return train
    }

    /// The prefix train of count c: spikes at steps 0 ..< c.
    static func prefix(_ c: Int) -> UInt32 { UInt32((1 << c) - 1) }

    /// Bit t of a train (a spike at step t), as 0 or 1.
    static func bit(_ train: UInt32, _ t: Int) -> Int64 { Int64((train >> UInt32(t)) & 1) }

    /// Spikes of a train at steps 0 ... t (0 for t < 0).
    static func running(_ train: UInt32, through t: Int) -> Int64 {
        var n: Int64 = 0
        if t >= 0 { for s in 0...t { n += bit(train, s) } }
        return n
    }

    /// The temporal decomposition of the product of trains a and b at step t (docs/SEMANTICS.md):
    /// a_t B_t + A_{t-1} b_t, capitals the running counts.
    static func product(_ a: UInt32, _ b: UInt32, at t: Int) -> Int64 {
        bit(a, t) * running(b, through: t) + running(a, through: t - 1) * bit(b, t)
    }

    /// Trains stored as uint8, or little-endian uint16.
    static func bytes(_ trains: [UInt32], _ width: TrainWidth) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: trains.count * width.bytes)
        for (i, t) in trains.enumerated() { put(&out, width, i, t) }
        return out
    }

    static func put(_ bytes: inout [UInt8], _ width: TrainWidth, _ i: Int, _ train: UInt32) {
        bytes[i * width.bytes] = UInt8(train & 0xFF)
        if width == .bits16 { bytes[i * 2 + 1] = UInt8((train >> 8) & 0xFF) }
    }

    /// Value k = (i * 3 + dy) * 3 + dx of the 3x3 field of position pos in map [cin][h][w], 0 outside.
    static func patchValue(_ map: [UInt8], h: Int, w: Int, pos: Int, k: Int) -> UInt8 {
        let i = k / 9, dy = k % 9 / 3, dx = k % 3
        let y = pos / w + dy - 1, x = pos % w + dx - 1
        return y >= 0 && y < h && x >= 0 && x < w ? map[(i * h + y) * w + x] : 0
    }

    /// The block of BlockGather.swift as uint32 words, then 16 guard words 0xA5A5A5A5: group g of row
    /// r is words 8g + 2r and 8g + 2r + 1, (v0 | v2 << 16, v1 | v3 << 16) interleaved or
    /// (v0 | v1 << 16, v2 | v3 << 16) natural; values past K and rows past `rows` are 0.
    static func block(k: Int, rows: Int, order: BlockOrder, _ value: (Int, Int) -> UInt8) -> [UInt32] {
        let groups = (k + 3) / 4
        if order == .bytes {  // (k + 7) / 8 groups of 32 bytes, row r's values 8g ..< 8g + 8 at 32g + 8r; untouched after
            var bytes = [UInt8](repeating: 0xA5, count: groups * 32 + 64)
            for g in 0..<((k + 7) / 8) {
                for row in 0..<4 {
                    for i in 0..<8 { bytes[32 * g + 8 * row + i] = row < rows && 8 * g + i < k ? value(row, 8 * g + i) : 0 }
                }
            }
            return stride(from: 0, to: bytes.count, by: 4).map {
                UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24
            }
        }
        var words = [UInt32](repeating: 0, count: groups * 8)
        for g in 0..<groups {
            for row in 0..<rows {
                var v = [UInt32](repeating: 0, count: 4)
                for i in 0..<4 where 4 * g + i < k { v[i] = UInt32(value(row, 4 * g + i)) }
                let lanes = order == .natural ? [v[0], v[1], v[2], v[3]] : [v[0], v[2], v[1], v[3]]
                words[8 * g + 2 * row] = lanes[0] | lanes[1] << 16
                words[8 * g + 2 * row + 1] = lanes[2] | lanes[3] << 16
            }
        }
        return words + [UInt32](repeating: 0xA5A5_A5A5, count: 16)
    }
}

// MARK: - Helpers

/// Reports a mismatch once (the caller stops at the first failing case) with its context.
fileprivate func agree<T: Equatable>(_ got: T, _ want: T, _ context: @autoclosure () -> String,
                                     sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    if got == want { return true }
    Issue.record("\(context()): got \(got), want \(want)", sourceLocation: sourceLocation)
    return false
}

/// Runs a gather into a block of `blockBytes(k)` filled with 0xA5 and followed by 16 guard words;
/// returns all its words.
fileprivate func gathered(k: Int, _ gather: (UnsafeMutableRawPointer) -> Void) -> [UInt32] {
    let block = Buffer([UInt32](repeating: 0xA5A5_A5A5, count: (k + 3) / 4 * 8 + 16))
    gather(block.raw)
    return block.array
}

/// A 16-byte aligned heap copy of an array for one kernel call, read back with `array`.
fileprivate final class Buffer<T> {
    let p: UnsafeMutablePointer<T>, count: Int
    init(_ values: [T]) {
        count = values.count
        p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<T>.stride, alignment: 16)
            .bindMemory(to: T.self, capacity: max(count, 1))
        values.withUnsafeBufferPointer { if let base = $0.baseAddress { p.initialize(from: base, count: count) } }
    }
    deinit {
        p.deinitialize(count: count)
        UnsafeMutableRawPointer(p).deallocate()
    }
    var raw: UnsafeMutableRawPointer { UnsafeMutableRawPointer(p) }
    var array: [T] { Array(UnsafeBufferPointer(start: p, count: count)) }
}

/// A neuron layer: its shift and per neuron (theta, beta).
fileprivate struct Layer: CustomStringConvertible {
    var shift: Int, theta: [Int32], bias: [Int32]
    var description: String { "shift \(shift) theta \(theta) bias \(bias)" }
}

fileprivate extension SplitMix {
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(UInt64(1) << 53) < p }
    /// A fan-in: 1 ... 40 (every K % 4) or one of the models' (64, 128, 144 = 16 x 9, 288 = 32 x 9).
    mutating func fanIn() -> Int { chance(0.75) ? int(1...40) : pick([64, 128, 144, 288, 515]) }
    mutating func signed(_ bound: Int) -> Int { int(-bound...bound) }
    mutating func weight8() -> Int8 { chance(0.1) ? pick([-128, 127]) : Int8(truncatingIfNeeded: next()) }
    mutating func weight16() -> Int16 { chance(0.1) ? pick([-32768, 32767]) : Int16(truncatingIfNeeded: next()) }
    /// A pixel (0 ... 255) or a count (0 ... 16, a third of them 0).
    mutating func value(pixels: Bool) -> UInt8 { pixels ? UInt8(truncatingIfNeeded: next()) : chance(0.3) ? 0 : UInt8(int(1...16)) }
    /// A train of `steps` bits: silent with probability `silent`, else a random nonzero one.
    mutating func train(steps: Int, silent: Double) -> UInt32 {
        if chance(silent) { return 0 }
        var t: UInt32 = 0
        while t == 0 { t = UInt32(truncatingIfNeeded: next()) & UInt32((1 << steps) - 1) }
        return t
    }
    /// uint16 trains for T > 8; either width for T <= 8.
    mutating func width(steps: Int) -> TrainWidth { steps > 8 || chance(0.3) ? .bits16 : .bits8 }

    /// A layer of `count` neurons for accumulations |acc| <= bound, inside the packer's guarantee
    /// 2^k B + max|beta| + (L + 1) max theta <= 2^31 - 1 (SEMANTICS 4.7): a shift 0 ... 8 (lowered until
    /// 2^k B <= 2^29), thresholds from 1 up to the one at which the largest acc just reaches L (so
    /// counts reach 0, L and between), biases of either sign up to 2 theta (at most 2^28).
    mutating func neurons(_ count: Int, bound: Int, levels: Int) -> Layer {
        var shift = int(0...8)
        while shift > 0 && bound << shift > 1 << 29 { shift -= 1 }
        let top = max(1, min(bound << shift, 1 << 29) / levels)
        var layer = Layer(shift: shift, theta: [], bias: [])
        for _ in 0..<count {
            let scale = max(1, top >> int(0...14))
            let theta = chance(0.1) ? int(1...3) : int(max(1, scale / 2)...scale)
            layer.theta.append(Int32(theta))
            layer.bias.append(chance(0.2) ? 0 : Int32(signed(min(2 * theta, 1 << 28))))
        }
        return layer
    }
}
