import CSDMachine

/// x86-64 hosts: the 3x3 conv on pixels (the encoding conv, `inputPixels`) without blocks. A block of
/// four or eight receptive fields costs a gather of nine values per channel and position, and a
/// pass over K = 9 Cin weights per output that is mostly padding when Cin is small; here the
/// output's positions are the vector lanes instead. Eight neighbouring positions of one map row
/// are one int32 vector per output channel: the nine taps of a channel are five pairs of int16
/// lanes, (dy dx) = (0 0, 0 1), (0 2, 1 0), (1 1, 1 2), (2 0, 2 1), (2 2, -), each pair one multiply-add
/// of pairs (`csd_madd_i16x16`: PMADDWD) against the pair's two weights broadcast. The pairs of the
/// eight positions are built once per channel and shared by every output channel; the input is
/// first copied into the buffer with a zero border (so every load is inside it), and every
/// output's five weight pairs are laid out there once per op.
///
/// Exact: pixels (<= 255) times int8 weights, summed in int32 lanes (the block path's products and
/// wrapping sums in another order); the neuron is the block sink's formula (`NeuronSink`,
/// `Kernels.neuronCounts`), one output channel's parameters for the eight lanes.
#if arch(x86_64)
extension Kernels {
    /// The zero-bordered copy's row length for a map of width w: one zero before, w values, and
    /// zeros after for the last vector's loads (they read up to 8 + 1 bytes past x).
    @inline(__always) static func pixelConvRowBytes(w: Int) -> Int { (w &+ 17) & ~7 }

    /// The buffer bytes `pixelConvX86` needs: the bordered map, every output's weight pairs (five
    /// words per input channel) and a map row's pairs (five vectors per input channel and eight
    /// positions).
    @inline(__always) @usableFromInline static func pixelConvBytes(cin: Int, h: Int, w: Int, cout: Int) -> Int {
        pixelConvLayout(cin: cin, h: h, w: w, cout: cout).bytes
    }

    /// Where the buffer's parts start (the bordered map at 0; each part 32-byte aligned) and its bytes.
    @inline(__always) static func pixelConvLayout(cin: Int, h: Int, w: Int, cout: Int) -> (words: Int, pairs: Int, bytes: Int) {
        let words = (cin &* (h &+ 2) &* pixelConvRowBytes(w: w) &+ 31) & ~31
        let pairs = words &+ ((cout &* cin &* 20 &+ 31) & ~31)
        return (words, pairs, pairs &+ ((w &+ 7) &>> 3) &* cin &* 160)
    }

    /// The conv3x3 (stride 1, zero padding 1) of `input` [cin][h][w] uint8 by int8 weights
    /// [cout][cin][3][3], each output through the sink's neuron (the sink's `out`, `thresholds`,
    /// `biases`, `shift`, `levels`, `output`; a neuron per output channel): the output rows
    /// `rows` (y0 ..< y1), channel o's row y at out + o * outputStep + (y - y0) * w (the whole map
    /// [cout][h][w], or a band of it). `buffer` holds `pixelConvBytes` bytes; `laidOut`: it holds
    /// the bordered map and the weight pairs already (a later band of the same run). Returns the
    /// spikes (the sum of the counts).
    static func pixelConvX86(_ input: UnsafePointer<UInt8>, cin: Int, h: Int, w: Int, weights: UnsafePointer<Int8>, cout: Int,
                             _ sink: NeuronSink, buffer: UnsafeMutableRawPointer, rows: (Int, Int), laidOut: Bool) -> UInt32 {
        let rowBytes = pixelConvRowBytes(w: w), layout = pixelConvLayout(cin: cin, h: h, w: w, cout: cout)
        let map = buffer.assumingMemoryBound(to: UInt8.self)
        let words = (buffer + layout.words).assumingMemoryBound(to: Int32.self)
        if !laidOut {
            borderedCopy(input, cin: cin, h: h, w: w, into: map, rowBytes: rowBytes)
            weightPairs(weights, count: cout &* cin, into: words)
        }
        let pairs = buffer + layout.pairs
        let plane = sink.outputStep
        let chunks = (w &+ 7) &>> 3, last = chunks &- 1, lastFresh = freshLanes(last, w: w), all = SIMD8<Int32>(repeating: -1)
        var spikes = SIMD8<Int32>(repeating: 0), y = rows.0
        while y < rows.1 {
            var q = 0
            while q < chunks {  // the five pairs of chunk q (`chunkStart`), channel c
                var c = 0
                while c < cin {
                    let row: Int = (c &* (h &+ 2) &+ y) &* rowBytes &+ chunkStart(q, w: w)
                    positionPairs(map + row, rowBytes: rowBytes, into: pairs + (q &* cin &+ c) &* 160)
                    c &+= 1
                }
                q &+= 1
            }
            let out = sink.out + (y &- rows.0) &* w
            var o = 0
            if cin == 1 {  // the five weight pairs broadcast once for the row
                while o < cout {
                    let wp = words + 5 &* o
                    let w0 = broadcastPair(wp[0]), w1 = broadcastPair(wp[1]), w2 = broadcastPair(wp[2])
                    let w3 = broadcastPair(wp[3]), w4 = broadcastPair(wp[4])
                    let row = PixelRow(sink, o)
                    q = 0
                    while q < chunks {
                        let p = UnsafeRawPointer(pairs + q &* 160)
                        var acc = csd_madd_i16x16(p.loadUnaligned(as: SIMD16<Int16>.self), w0)
                        acc = csd_maddacc_i16x16(acc, p.loadUnaligned(fromByteOffset: 32, as: SIMD16<Int16>.self), w1)
                        acc = csd_maddacc_i16x16(acc, p.loadUnaligned(fromByteOffset: 64, as: SIMD16<Int16>.self), w2)
                        acc = csd_maddacc_i16x16(acc, p.loadUnaligned(fromByteOffset: 96, as: SIMD16<Int16>.self), w3)
                        acc = csd_maddacc_i16x16(acc, p.loadUnaligned(fromByteOffset: 128, as: SIMD16<Int16>.self), w4)
                        row.put(acc, out + o &* plane, chunk: q, w: w, fresh: q == last ? lastFresh : all, &spikes)
                        q &+= 1
                    }
                    o &+= 1
                }
            } else {
                while o < cout {
                    let row = PixelRow(sink, o)
                    q = 0
                    while q < chunks {
                        var acc = SIMD8<Int32>(repeating: 0), p = UnsafeRawPointer(pairs + q &* cin &* 160), wp = words + o &* cin &* 5
                        var c = 0
                        while c < cin {
                            acc = csd_maddacc_i16x16(acc, p.loadUnaligned(as: SIMD16<Int16>.self), broadcastPair(wp[0]))
                            acc = csd_maddacc_i16x16(acc, p.loadUnaligned(fromByteOffset: 32, as: SIMD16<Int16>.self), broadcastPair(wp[1]))
                            acc = csd_maddacc_i16x16(acc, p.loadUnaligned(fromByteOffset: 64, as: SIMD16<Int16>.self), broadcastPair(wp[2]))
                            acc = csd_maddacc_i16x16(acc, p.loadUnaligned(fromByteOffset: 96, as: SIMD16<Int16>.self), broadcastPair(wp[3]))
                            acc = csd_maddacc_i16x16(acc, p.loadUnaligned(fromByteOffset: 128, as: SIMD16<Int16>.self), broadcastPair(wp[4]))
                            p += 160
                            wp += 5
                            c &+= 1
                        }
                        row.put(acc, out + o &* plane, chunk: q, w: w, fresh: q == last ? lastFresh : all, &spikes)
                        q &+= 1
                    }
                    o &+= 1
                }
            }
            y &+= 1
        }
        return UInt32(bitPattern: csd_sum_i32x8(spikes))
    }

}

/// One output channel's neuron over a map row of `pixelConvX86`: its parameters in vectors once per
/// row; `put` takes eight positions' sums.
struct PixelRow {
    let shift: SIMD8<Int32>, theta: SIMD8<Int32>, offset: SIMD8<Int32>, levels: Int32, narrow: Bool, trains: Bool

    @inline(__always) init(_ sink: NeuronSink, _ o: Int) {
        let t = sink.thresholds[o]
        shift = SIMD8(repeating: sink.shift & 31)
        theta = SIMD8(repeating: t)
        offset = SIMD8(repeating: sink.biases[o] &+ (t &>> 1))
        levels = sink.levels
        narrow = t <= Kernels.narrowThreshold
        trains = sink.output == .prefixTrains
    }

    /// The neurons of positions `Kernels.chunkStart(q, w)` + 0 ..< 8 of the row at `out`: their outputs
    /// stored (those inside the map), the counts of the lanes in `fresh` (-1: a position no earlier
    /// chunk had) added to `spikes` lane by lane.
    @inline(__always) func put(_ acc: SIMD8<Int32>, _ out: UnsafeMutablePointer<UInt8>, chunk q: Int, w: Int,
                               fresh: SIMD8<Int32>, _ spikes: inout SIMD8<Int32>) {
        let counts = Kernels.neuronCounts((acc &<< shift) &+ offset, threshold: theta, levels: levels, narrow: narrow)
        let one = SIMD8<Int32>(repeating: 1)
        let bytes = csd_bytes_i32x8(trains ? (one &<< counts) &- one : counts)
        let x0 = Kernels.chunkStart(q, w: w), d = UnsafeMutableRawPointer(out + x0)
        if x0 &+ 8 <= w {
            d.storeBytes(of: bytes, as: SIMD8<UInt8>.self)
        } else {  // a map narrower than 8
            var i = 0
            while i < w {
                d.storeBytes(of: bytes[i], toByteOffset: i, as: UInt8.self)
                i &+= 1
            }
        }
        spikes &+= counts & fresh
    }
}

extension Kernels {
    /// Where chunk q of a row of width w starts: 8q, but the last chunk of a row whose width is not
    /// a multiple of 8 ends at the row's end (it overlaps the one before; a row narrower than 8 is
    /// one chunk at 0), so that every store is eight bytes inside the row.
    @inline(__always) static func chunkStart(_ q: Int, w: Int) -> Int { w < 8 ? 0 : min(8 &* q, w &- 8) }

    /// The lanes of chunk q that hold positions of the map no earlier chunk of the row had: -1, else 0.
    @inline(__always) static func freshLanes(_ q: Int, w: Int) -> SIMD8<Int32> {
        let x0 = chunkStart(q, w: w), lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
        let lo = SIMD8(repeating: Int32(truncatingIfNeeded: 8 &* q &- x0)), hi = SIMD8(repeating: Int32(truncatingIfNeeded: min(8, w &- x0)))
        // lo <= lane < hi, in shifts of differences (Swift's lane comparisons compile lane by lane)
        return ~((lane &- lo) &>> 31) & ((lane &- hi) &>> 31)
    }

    /// input [cin][h][w] into map [cin][h + 2][rowBytes]: row y + 1, byte x + 1 holds input (y, x); the
    /// border rows, the byte before and the bytes after each row zero.
    @usableFromInline static func borderedCopy(_ input: UnsafePointer<UInt8>, cin: Int, h: Int, w: Int, into map: UnsafeMutablePointer<UInt8>,
                             rowBytes: Int) {
        UnsafeMutableRawPointer(map).initializeMemory(as: UInt8.self, repeating: 0, count: cin &* (h &+ 2) &* rowBytes)
        var c = 0
        while c < cin {
            var y = 0
            while y < h {
                let to: Int = (c &* (h &+ 2) &+ y &+ 1) &* rowBytes &+ 1, from: Int = (c &* h &+ y) &* w
                UnsafeMutableRawPointer(map + to).copyMemory(from: input + from, byteCount: w)
                y &+= 1
            }
            c &+= 1
        }
    }

    /// Each channel's nine weights (weights[9i ..< 9i + 9], i < count) as five words of two int16
    /// halves: taps (0, 1), (2, 3), (4, 5), (6, 7), (8, zero), the first in the low half.
    static func weightPairs(_ weights: UnsafePointer<Int8>, count: Int, into words: UnsafeMutablePointer<Int32>) {
        var i = 0
        while i < count {
            let p = weights + 9 &* i, d = words + 5 &* i
            var k = 0
            while k < 5 {
                let lo = UInt32(UInt16(bitPattern: Int16(p[2 &* k])))
                let hi = k < 4 ? UInt32(UInt16(bitPattern: Int16(p[2 &* k &+ 1]))) : 0
                d[k] = Int32(bitPattern: lo | hi &<< 16)
                k &+= 1
            }
            i &+= 1
        }
    }

    /// The five pairs of eight positions (lane pairs 2i, 2i + 1: position x0 + i) from the bordered
    /// rows y, y + 1, y + 2 (field rows dy = 0, 1, 2) starting at the byte of x0 - 1.
    @inline(__always) static func positionPairs(_ rows: UnsafePointer<UInt8>, rowBytes: Int, into pairs: UnsafeMutableRawPointer) {
        let r0 = UnsafeRawPointer(rows), r1 = r0 + rowBytes, r2 = r1 + rowBytes
        let a0 = r0.loadUnaligned(as: UInt64.self), b0 = r0.loadUnaligned(fromByteOffset: 1, as: UInt64.self)
        let c0 = r0.loadUnaligned(fromByteOffset: 2, as: UInt64.self)
        let a1 = r1.loadUnaligned(as: UInt64.self), b1 = r1.loadUnaligned(fromByteOffset: 1, as: UInt64.self)
        let c1 = r1.loadUnaligned(fromByteOffset: 2, as: UInt64.self)
        let a2 = r2.loadUnaligned(as: UInt64.self), b2 = r2.loadUnaligned(fromByteOffset: 1, as: UInt64.self)
        let c2 = r2.loadUnaligned(fromByteOffset: 2, as: UInt64.self)
        pairs.storeBytes(of: csd_zip_u8x8(a0, b0), as: SIMD16<Int16>.self)
        pairs.storeBytes(of: csd_zip_u8x8(c0, a1), toByteOffset: 32, as: SIMD16<Int16>.self)
        pairs.storeBytes(of: csd_zip_u8x8(b1, c1), toByteOffset: 64, as: SIMD16<Int16>.self)
        pairs.storeBytes(of: csd_zip_u8x8(a2, b2), toByteOffset: 96, as: SIMD16<Int16>.self)
        pairs.storeBytes(of: csd_zip_u8x8(c2, 0), toByteOffset: 128, as: SIMD16<Int16>.self)
    }

    /// A word of two int16 weights in every lane pair.
    @inline(__always) static func broadcastPair(_ word: Int32) -> SIMD16<Int16> {
        unsafeBitCast(SIMD8<Int32>(repeating: word), to: SIMD16<Int16>.self)
    }
}
#endif
