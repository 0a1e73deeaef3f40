import CSDMachine

/// The x86-64 twin of the block dot (BlockDot.swift), for hosts: the packer's `verify`, the host
/// library. Same results to the bit as the portable loop: the same int32 products and wrapping
/// sums, in another order (addition mod 2^32 is associative). Per group of four inputs, the four
/// int16 weights are broadcast to the four block rows and one multiply-add of pairs
/// (`csd_maddacc_i16x16`: PMADDWD and an add, one VPDPWSSD on VNNI builds) gives 16 products summed
/// in pairs; the pair sums of a row add up
/// at the end. int8 weights are widened as they are broadcast (`csd_bcast4_i8`). On x86 builds
/// the pixels' blocks are gathered in natural order (`Kernels.neuronOrder`; counts take byte blocks,
/// CountBlocksX86.swift), so weights need no permutation. Four outputs per pass; a last pass of
/// fewer repeats its first output in the missing ones and drops them. Selected at build time (`CSD_KERNELS_X86`, not with
/// `CSD_PLAIN_KERNELS`).
#if arch(x86_64)
extension Kernels {
    /// Pairs of blocks (x86-64 hosts): conv, linear and the attention pair gather eight rows at a time
    /// into two blocks, the second blockBytes(k) after the first, in a stack buffer of `pairBlockBytes`
    /// that `Engine.run` sets up once per inference (`Context.pairBlocks`, used by `convFused`,
    /// `linearFused`, `attentionFused`; ops whose K does not fit keep the kernel scratch and four rows), and a sink of more than four rows tells the twins to run both blocks in
    /// one pass over the weights: each weight group is read and broadcast once for eight rows, and the
    /// per-pass work is shared.
    public static let pairBlockBytes = 8192
    public typealias PairBlocks = InlineArray<256, SIMD32<UInt8>>

    /// Whether the twins run and a pair of blocks of K fits `pairBlockBytes` after `after` bytes.
    @inline(__always) @usableFromInline static func pairFits(k: Int, after: Int = 0) -> Bool {
        useX86Twins && after &+ 2 &* blockBytes(k: k) <= pairBlockBytes
    }

    /// `blockDotNeurons` on x86-64: int8 weights, natural block; four outputs per pass (one block load
    /// for the four, their sixteen neurons in two vectors). A group's four weights are widened and broadcast as
    /// they are read (`csd_bcast4_i8`); a row's last group, when K is not a multiple of 4, is built
    /// lane by lane (zeros past K, no read past the row). A sink of more than four rows takes a pair of
    /// blocks (`pairBlocks`): each weight group, read once, meets both.
    public static func blockDotNeuronsX86(_ w: UnsafePointer<Int8>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                          outputs: Int, _ sink: inout NeuronSink) {
        if sink.rows > 4 {
            pixelsX86(w, wstride: wstride, block, k: k, outputs: outputs, two: true, &sink)
        } else {
            pixelsX86(w, wstride: wstride, block, k: k, outputs: outputs, two: false, &sink)
        }
    }

    /// `blockDotNeuronsX86` for one block or (`two`) a pair.
    @inline(__always) static func pixelsX86(_ w: UnsafePointer<Int8>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                            outputs: Int, two: Bool, _ sink: inout NeuronSink) {
        var lower = sink.lowerRows(two), upper = sink.upperRows(two), spikes = SIMD8<Int32>(repeating: 0), j = 0
        let oct = two && sink.octRows
        while j < outputs {
            let n = min(4, outputs &- j)
            let s = halfwordQuads(quadRows(w, wstride: wstride, j, n), block, k: k, two: two,
                                  weights: { csd_bcast4_i8(UnsafeRawPointer($0).loadUnaligned(as: Int32.self)) },
                                  last: { csd_bcast4_i8(Int32(truncatingIfNeeded: lastWeights($0, $1))) })
            if oct && n == 4 {
                lower.putOctX86(j, s, &spikes)
            } else {
                lower.putX86(j, outputs: n, s.first.0, s.first.1, &spikes)
                if two { upper.putX86(j, outputs: n, s.second.0, s.second.1, &spikes) }
            }
            j &+= 4
        }
        sink.spikes &+= UInt32(bitPattern: csd_sum_i32x8(spikes))
    }

    /// `blockDotStream` on x86-64: int16 weights read where they lie, four outputs per pass (one block
    /// load for the four, their sixteen values into the stream at once, `StreamSink.putX86`); the last
    /// group of a row whose K is not a multiple of 4 is built lane by lane (zeros past K, no read past
    /// the row). A sink of more than four rows takes a pair of blocks (`pairBlocks`).
    public static func blockDotStreamX86(_ w: UnsafePointer<Int16>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                         outputs: Int, _ sink: StreamSink) {
        if sink.rows > 4 {
            streamX86(w, wstride: wstride, block, k: k, outputs: outputs, two: true, sink)
        } else {
            streamX86(w, wstride: wstride, block, k: k, outputs: outputs, two: false, sink)
        }
    }

    /// `blockDotStreamX86` for one block or (`two`) a pair.
    @inline(__always) static func streamX86(_ w: UnsafePointer<Int16>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                            outputs: Int, two: Bool, _ sink: StreamSink) {
        let lower = sink.lowerRows(two), upper = sink.upperRows(two), oct = two && sink.octRows
        var j = 0
        while j < outputs {
            let n = min(4, outputs &- j)
            let s = halfwordQuads(quadRows(w, wstride: wstride, j, n), block, k: k, two: two,
                                  weights: { csd_bcast4_i16(UnsafeRawPointer($0).loadUnaligned(as: Int64.self)) },
                                  last: { p, tail in
                let w4 = SIMD4<Int16>(p[0], tail > 1 ? p[1] : 0, tail > 2 ? p[2] : 0, 0)
                return csd_bcast4_i16(unsafeBitCast(w4, to: Int64.self))
            })
            if oct && n == 4 {
                lower.putOctX86(j, s)
            } else {
                lower.putX86(j, outputs: n, s.first.0, s.first.1)
                if two { upper.putX86(j, outputs: n, s.second.0, s.second.1) }
            }
            j &+= 4
        }
    }

    /// The accumulators of a pass: four weight rows against a block (a) and the pair's second block (b).
    struct PassSums {
        var a0 = SIMD8<Int32>(repeating: 0), a1 = SIMD8<Int32>(repeating: 0), a2 = SIMD8<Int32>(repeating: 0)
        var a3 = SIMD8<Int32>(repeating: 0), b0 = SIMD8<Int32>(repeating: 0), b1 = SIMD8<Int32>(repeating: 0)
        var b2 = SIMD8<Int32>(repeating: 0), b3 = SIMD8<Int32>(repeating: 0)

        /// The sums of weight rows 0 and 1 (lane 4o + r: weight row o, block row r), then of rows 2 and
        /// 3: of the first block, and of the second.
        var first: (SIMD8<Int32>, SIMD8<Int32>) { (Self.rows(a0, a1), Self.rows(a2, a3)) }
        var second: (SIMD8<Int32>, SIMD8<Int32>) { (Self.rows(b0, b1), Self.rows(b2, b3)) }

        @inline(__always) static func rows(_ x: SIMD8<Int32>, _ y: SIMD8<Int32>) -> SIMD8<Int32> {
            SIMD8(lowHalf: csd_pairsum_i32x8(x), highHalf: csd_pairsum_i32x8(y))
        }
    }

    /// The weight rows of the outputs j ..< j + n (n 1 ... 4) of a pass; the rows past n repeat row j
    /// (their sums are computed and dropped).
    @inline(__always) static func quadRows<W>(_ w: UnsafePointer<W>, wstride: Int, _ j: Int, _ n: Int)
        -> (UnsafePointer<W>, UnsafePointer<W>, UnsafePointer<W>, UnsafePointer<W>) {
        let r0 = w + j &* wstride
        return (r0, n > 1 ? r0 + wstride : r0, n > 2 ? r0 + 2 &* wstride : r0, n > 3 ? r0 + 3 &* wstride : r0)
    }

    /// Four weight rows against a halfword block (four values per row and group, 32 bytes a group, one
    /// load for the four rows), and with `two` against the pair's second block too (`pairBlocks`):
    /// `weights(p)` is the group at p broadcast to the block's four rows, `last(p, K % 4)` the last,
    /// partial group (zeros past K, no read past the row).
    @inline(__always) static func halfwordQuads<W>(_ rows: (UnsafePointer<W>, UnsafePointer<W>, UnsafePointer<W>, UnsafePointer<W>),
                                                   _ block: UnsafeRawPointer, k: Int, two: Bool,
                                                   weights: (UnsafePointer<W>) -> SIMD16<Int16>,
                                                   last: (UnsafePointer<W>, Int) -> SIMD16<Int16>) -> PassSums {
        let groups = k &>> 2, tail = k & 3, second = blockBytes(k: k)
        var acc = PassSums(), q = block, off = 0, g = groups
        while g > 0 {
            halfwordGroup(&acc, q, second, two, weights(rows.0 + off), weights(rows.1 + off), weights(rows.2 + off),
                          weights(rows.3 + off))
            off &+= 4
            q += 32
            g &-= 1
        }
        if tail != 0 {
            halfwordGroup(&acc, q, second, two, last(rows.0 + off, tail), last(rows.1 + off, tail), last(rows.2 + off, tail),
                          last(rows.3 + off, tail))
        }
        return acc
    }

    /// One group of a halfword block at q (and with `two` of the pair's second block, `second` bytes on)
    /// against four weight rows' broadcast groups.
    @inline(__always) static func halfwordGroup(_ acc: inout PassSums, _ q: UnsafeRawPointer, _ second: Int, _ two: Bool,
                                                _ w0: SIMD16<Int16>, _ w1: SIMD16<Int16>, _ w2: SIMD16<Int16>,
                                                _ w3: SIMD16<Int16>) {
        let v = q.loadUnaligned(as: SIMD16<Int16>.self)
        acc.a0 = csd_maddacc_i16x16(acc.a0, w0, v)
        acc.a1 = csd_maddacc_i16x16(acc.a1, w1, v)
        acc.a2 = csd_maddacc_i16x16(acc.a2, w2, v)
        acc.a3 = csd_maddacc_i16x16(acc.a3, w3, v)
        if two {
            let u = q.loadUnaligned(fromByteOffset: second, as: SIMD16<Int16>.self)
            acc.b0 = csd_maddacc_i16x16(acc.b0, w0, u)
            acc.b1 = csd_maddacc_i16x16(acc.b1, w1, u)
            acc.b2 = csd_maddacc_i16x16(acc.b2, w2, u)
            acc.b3 = csd_maddacc_i16x16(acc.b3, w3, u)
        }
    }

    /// clip(floor(a / theta), 0, levels) per lane (theta >= 1, validated; levels <= 16): the quotient in
    /// floating point, clipped at levels, truncated, negatives to 0 (host builds only; the device builds
    /// divide in integers or count by subtraction). Exact:
    /// - float64 for any theta: a double holds a and theta exactly and the division rounds correctly; an
    ///   integer quotient is exact; a quotient q below levels that is not an integer lies at least
    ///   1 / theta > 2^-31 below the next integer n <= 16, a relative distance above 2^-35, beyond the
    ///   rounding error (2^-53), so rounding never reaches n; a quotient at or above levels rounds to at
    ///   least levels (an integer; rounding is monotone) and is clipped; truncation is the floor for
    ///   q >= 0, and a q < 0 gives 0 either way.
    /// - float32 (one division for eight lanes instead of two) when every theta <= 986,895
    ///   (17 theta < 2^24): for |a| < 2^24 both are exact floats and the same argument holds, as
    ///   n - q >= 1 / theta > 2^-24 * 17 > 2^-24 q, the largest rounding error; for |a| >= 2^24 the
    ///   quotient's magnitude is above 2^24 / 986,895 > 17 > levels, so it clips to levels or to 0.
    @inline(__always) static func neuronCounts(_ a: SIMD8<Int32>, threshold theta: SIMD8<Int32>, levels: Int32) -> SIMD8<Int32> {
        neuronCounts(a, threshold: theta, levels: levels, narrow: csd_any_gt_i32x8(theta, SIMD8(repeating: narrowThreshold)) == 0)
    }

    /// The largest threshold for which `neuronCounts` may divide in float32 (see above).
    static let narrowThreshold: Int32 = 986_895

    /// `neuronCounts` with the float32 route chosen by the caller: `narrow` only when every lane's
    /// theta is at most `narrowThreshold`.
    @inline(__always) static func neuronCounts(_ a: SIMD8<Int32>, threshold theta: SIMD8<Int32>, levels: Int32,
                                               narrow: Bool) -> SIMD8<Int32> {
        let q: SIMD8<Int32>
        if narrow {
            // levels converted in the vector (a scalar conversion would wait on a register it merges into)
            q = csd_trunc_f32x8(csd_min_f32x8(csd_f32_i32x8(a) / csd_f32_i32x8(theta), csd_f32_i32x8(SIMD8(repeating: levels))))
        } else {
            let top = SIMD4<Double>(repeating: Double(levels))
            q = SIMD8(lowHalf: csd_trunc_f64x4(csd_min_f64x4(csd_f64_i32x4(a.lowHalf) / csd_f64_i32x4(theta.lowHalf), top)),
                      highHalf: csd_trunc_f64x4(csd_min_f64x4(csd_f64_i32x4(a.highHalf) / csd_f64_i32x4(theta.highHalf), top)))
        }
        return csd_max_i32x8(q, SIMD8(repeating: 0))
    }
}

/// A sink that can serve a pair of blocks (`Kernels.pairBlocks`): a sink of up to eight rows split
/// into the first block's four and the second's rest.
protocol PairSink {
    var rows: Int { get set }
    /// Drops the first n rows: the sink then starts at row n (its outputs and row parameters).
    mutating func dropFirstRows(_ n: Int)
}

extension PairSink {
    /// The sink of a pair's first block (with `two`): rows 0 ..< 4 (without `two`, self).
    @inline(__always) func lowerRows(_ two: Bool) -> Self {
        var s = self
        if two { s.rows = 4 }
        return s
    }

    /// The sink of a pair's second block (with `two`): rows 4 ..< rows (without `two` a copy, unused).
    @inline(__always) func upperRows(_ two: Bool) -> Self {
        var s = self
        if two { s.dropFirstRows(4) }
        return s
    }
}

extension NeuronSink: PairSink {
    /// Whether a pair's passes of four outputs take `putOctX86`: eight rows, a neuron per output (or one
    /// for all).
    @inline(__always) var octRows: Bool { rows == 8 && paramRowStep == 0 }

    @inline(__always) mutating func dropFirstRows(_ n: Int) {
        out += n &* rowStep
        thresholds += n &* paramRowStep
        biases += n &* paramRowStep
        rows &-= n
    }

    /// `put` for outputs j ..< j + n (n 1 ... 4) at once: lane 4o + r of a01 is output j + o, row r, and of
    /// a23 output j + 2 + o (lanes of rows >= `rows` and of outputs past n are computed from output j's row
    /// 0 parameters and dropped; nothing is read past the parameters). The neuron formula in int32 lanes,
    /// the counts by `Kernels.neuronCounts`, the sixteen outputs narrowed to bytes at once: an output's
    /// four rows one byte apart are one 32-bit store, and so are a row's four outputs one byte apart.
    /// The real lanes' counts add up in `spikes` (lane by lane; the caller sums them once).
    @inline(__always) func putX86(_ j: Int, outputs n: Int, _ a01: SIMD8<Int32>, _ a23: SIMD8<Int32>,
                                  _ spikes: inout SIMD8<Int32>) {
        if n == 4 && rows == 4 && paramRowStep == 0 {
            putQuadX86(j, a01, a23, &spikes)
        } else {
            putPartX86(j, outputs: n, a01, a23, &spikes)
        }
    }

    /// The thresholds and biases of outputs j ..< j + 4, a neuron per output (or one for all, paramStep 0).
    @inline(__always) func quadParams(_ j: Int) -> (SIMD4<Int32>, SIMD4<Int32>) {
        let th = thresholds, bs = biases, ps = paramStep
        if ps == 1 {
            return (UnsafeRawPointer(th + j).loadUnaligned(as: SIMD4<Int32>.self),
                    UnsafeRawPointer(bs + j).loadUnaligned(as: SIMD4<Int32>.self))
        }
        if ps == 0 { return (SIMD4(repeating: th[0]), SIMD4(repeating: bs[0])) }
        let i0 = j &* ps
        return (SIMD4(th[i0], th[i0 &+ ps], th[i0 &+ 2 &* ps], th[i0 &+ 3 &* ps]),
                SIMD4(bs[i0], bs[i0 &+ ps], bs[i0 &+ 2 &* ps], bs[i0 &+ 3 &* ps]))
    }

    /// `putX86` for four outputs of four rows, a neuron per output (or one for all): the four outputs'
    /// parameters in one vector each, the bias and the rounding half added there, spread over the rows;
    /// every lane real. The common case: all but a row block's last pass or a map's last block.
    @inline(__always) func putQuadX86(_ j: Int, _ a01: SIMD8<Int32>, _ a23: SIMD8<Int32>, _ spikes: inout SIMD8<Int32>) {
        let out = self.out, rowStep = self.rowStep, outputStep = self.outputStep
        let (t4, b4) = quadParams(j)
        let narrow = csd_any_gt_i32x4(t4, SIMD4(repeating: Kernels.narrowThreshold)) == 0
        let c4 = b4 &+ (t4 &>> 1), sh = SIMD8<Int32>(repeating: shift & 31)
        let c01 = Kernels.neuronCounts((a01 &<< sh) &+ csd_spread_lo_i32x8(c4), threshold: csd_spread_lo_i32x8(t4),
                                       levels: levels, narrow: narrow)
        let c23 = Kernels.neuronCounts((a23 &<< sh) &+ csd_spread_hi_i32x8(c4), threshold: csd_spread_hi_i32x8(t4),
                                       levels: levels, narrow: narrow)
        spikes &+= c01 &+ c23
        let one = SIMD8<Int32>(repeating: 1), trains = output == .prefixTrains
        let bytes = csd_bytes_i32x16(trains ? (one &<< c01) &- one : c01, trains ? (one &<< c23) &- one : c23)
        if rowStep == 1 {  // an output's four rows: one word each
            let words = unsafeBitCast(bytes, to: SIMD4<UInt32>.self), p = UnsafeMutableRawPointer(out + j &* outputStep)
            p.storeBytes(of: words[0], as: UInt32.self)
            p.storeBytes(of: words[1], toByteOffset: outputStep, as: UInt32.self)
            p.storeBytes(of: words[2], toByteOffset: 2 &* outputStep, as: UInt32.self)
            p.storeBytes(of: words[3], toByteOffset: 3 &* outputStep, as: UInt32.self)
        } else if outputStep == 1 {  // a row's four outputs: one word each
            let words = unsafeBitCast(csd_transpose4x4_u8(bytes), to: SIMD4<UInt32>.self), p = UnsafeMutableRawPointer(out + j)
            p.storeBytes(of: words[0], as: UInt32.self)
            p.storeBytes(of: words[1], toByteOffset: rowStep, as: UInt32.self)
            p.storeBytes(of: words[2], toByteOffset: 2 &* rowStep, as: UInt32.self)
            p.storeBytes(of: words[3], toByteOffset: 3 &* rowStep, as: UInt32.self)
        } else {
            storeBytes(bytes, j, outputs: 4)
        }
    }

    /// `putX86` for both blocks of a pair at once (`pairBlocks`; self the pair's first sink, `lowerRows`,
    /// the second's rows four rows on): four outputs of eight rows, a neuron per output (or one for all).
    /// An output's eight rows are one vector, the pair sums of its two blocks' accumulators
    /// (`csd_hadd_i32x8`: lanes rows 0, 1, 4, 5, 2, 3, 6, 7), so its parameters are one value in every
    /// lane; the 32 outputs narrowed to bytes at once and stored a row's four outputs (one word) or an
    /// output's eight rows (one double word) at a time. Same neurons as two `putQuadX86`.
    @inline(__always) func putOctX86(_ j: Int, _ acc: Kernels.PassSums, _ spikes: inout SIMD8<Int32>) {
        let out = self.out, rowStep = self.rowStep, outputStep = self.outputStep
        let (t4, b4) = quadParams(j)
        let narrow = csd_any_gt_i32x4(t4, SIMD4(repeating: Kernels.narrowThreshold)) == 0
        let c4 = b4 &+ (t4 &>> 1), sh = SIMD8<Int32>(repeating: shift & 31), one = SIMD8<Int32>(repeating: 1)
        let trains = output == .prefixTrains, levels = self.levels
        @inline(__always) func counts(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>, _ o: Int32) -> SIMD8<Int32> {
            let c = Kernels.neuronCounts((csd_hadd_i32x8(a, b) &<< sh) &+ csd_dup_i32x8(c4, o),
                                         threshold: csd_dup_i32x8(t4, o), levels: levels, narrow: narrow)
            spikes &+= c
            return trains ? (one &<< c) &- one : c
        }
        let q0 = counts(acc.a0, acc.b0, 0), q1 = counts(acc.a1, acc.b1, 1)
        let q2 = counts(acc.a2, acc.b2, 2), q3 = counts(acc.a3, acc.b3, 3)
        if outputStep == 1 {  // a row's four outputs: one word each (word i: lane i, row 0, 1, 4, 5, 2, 3, 6, 7)
            let words = unsafeBitCast(csd_bytes_lanes_i32x32(q0, q1, q2, q3), to: SIMD8<UInt32>.self)
            let p = UnsafeMutableRawPointer(out + j)
            p.storeBytes(of: words[0], as: UInt32.self)
            p.storeBytes(of: words[1], toByteOffset: rowStep, as: UInt32.self)
            p.storeBytes(of: words[4], toByteOffset: 2 &* rowStep, as: UInt32.self)
            p.storeBytes(of: words[5], toByteOffset: 3 &* rowStep, as: UInt32.self)
            p.storeBytes(of: words[2], toByteOffset: 4 &* rowStep, as: UInt32.self)
            p.storeBytes(of: words[3], toByteOffset: 5 &* rowStep, as: UInt32.self)
            p.storeBytes(of: words[6], toByteOffset: 6 &* rowStep, as: UInt32.self)
            p.storeBytes(of: words[7], toByteOffset: 7 &* rowStep, as: UInt32.self)
        } else {
            let rowBytes = csd_bytes_rows_i32x32(q0, q1, q2, q3)
            if rowStep == 1 {  // an output's eight rows: one double word each
                let words = unsafeBitCast(rowBytes, to: SIMD4<UInt64>.self), p = UnsafeMutableRawPointer(out + j &* outputStep)
                p.storeBytes(of: words[0], as: UInt64.self)
                p.storeBytes(of: words[1], toByteOffset: outputStep, as: UInt64.self)
                p.storeBytes(of: words[2], toByteOffset: 2 &* outputStep, as: UInt64.self)
                p.storeBytes(of: words[3], toByteOffset: 3 &* outputStep, as: UInt64.self)
            } else {
                var o = 0
                while o < 4 {
                    var r = 0
                    while r < 8 {
                        out[(j &+ o) &* outputStep &+ r &* rowStep] = rowBytes[8 &* o &+ r]
                        r &+= 1
                    }
                    o &+= 1
                }
            }
        }
    }

    /// The bytes of outputs j ..< j + n, rows 0 ..< rows (lane 4o + r: output j + o, row r), one by one.
    @inline(__always) func storeBytes(_ bytes: SIMD16<UInt8>, _ j: Int, outputs n: Int) {
        var o = 0
        while o < n {
            var r = 0
            while r < rows {
                out[(j &+ o) &* outputStep &+ r &* rowStep] = bytes[4 &* o &+ r]
                r &+= 1
            }
            o &+= 1
        }
    }

    /// `putX86` for the other passes: fewer outputs or rows, or a neuron per row.
    @inline(never) func putPartX86(_ j: Int, outputs n: Int, _ a01: SIMD8<Int32>, _ a23: SIMD8<Int32>,
                                   _ spikes: inout SIMD8<Int32>) {
        // the fields in locals: the byte stores below could alias them otherwise
        let th = thresholds, bs = biases, out = self.out, rows = self.rows, rowStep = self.rowStep, outputStep = self.outputStep
        let prs = paramRowStep, i0 = j &* paramStep
        let i1 = n > 1 ? i0 &+ paramStep : i0, i2 = n > 2 ? i0 &+ 2 &* paramStep : i0, i3 = n > 3 ? i0 &+ 3 &* paramStep : i0
        let t01: SIMD8<Int32>, t23: SIMD8<Int32>, b01: SIMD8<Int32>, b23: SIMD8<Int32>
        if prs == 0 {  // a neuron per output (or one for all): broadcasts
            t01 = SIMD8(lowHalf: SIMD4(repeating: th[i0]), highHalf: SIMD4(repeating: th[i1]))
            t23 = SIMD8(lowHalf: SIMD4(repeating: th[i2]), highHalf: SIMD4(repeating: th[i3]))
            b01 = SIMD8(lowHalf: SIMD4(repeating: bs[i0]), highHalf: SIMD4(repeating: bs[i1]))
            b23 = SIMD8(lowHalf: SIMD4(repeating: bs[i2]), highHalf: SIMD4(repeating: bs[i3]))
        } else {  // a neuron per row: lanes of rows past `rows` repeat row 0's
            let r1 = rows > 1 ? prs : 0, r2 = rows > 2 ? 2 &* prs : 0, r3 = rows > 3 ? 3 &* prs : 0
            @inline(__always) func four(_ p: UnsafePointer<Int32>, _ i: Int) -> SIMD4<Int32> {
                SIMD4(p[i], p[i &+ r1], p[i &+ r2], p[i &+ r3])
            }
            t01 = SIMD8(lowHalf: four(th, i0), highHalf: four(th, i1))
            t23 = SIMD8(lowHalf: four(th, i2), highHalf: four(th, i3))
            b01 = SIMD8(lowHalf: four(bs, i0), highHalf: four(bs, i1))
            b23 = SIMD8(lowHalf: four(bs, i2), highHalf: four(bs, i3))
        }
        let sh = SIMD8<Int32>(repeating: shift & 31)
        let c01 = Kernels.neuronCounts((a01 &<< sh) &+ b01 &+ (t01 &>> 1), threshold: t01, levels: levels)
        let c23 = Kernels.neuronCounts((a23 &<< sh) &+ b23 &+ (t23 &>> 1), threshold: t23, levels: levels)
        // the real lanes: all ones where (lane & 3) < rows and the lane's output < n (sign bits)
        let lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7), rowsV = SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: rows))
        let nV = SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: n &* 4))
        let rowReal = (lane & 3) &- rowsV
        spikes &+= c01 & ((rowReal & (lane &- nV)) &>> 31)
        spikes &+= c23 & ((rowReal & (lane &+ SIMD8(repeating: 8) &- nV)) &>> 31)
        let one = SIMD8<Int32>(repeating: 1), trains = output == .prefixTrains
        let bytes = csd_bytes_i32x16(trains ? (one &<< c01) &- one : c01, trains ? (one &<< c23) &- one : c23)
        if rowStep == 1 && rows == 4 {  // an output's four rows: one word each
            let words = unsafeBitCast(bytes, to: SIMD4<UInt32>.self)
            var o = 0
            while o < n {
                UnsafeMutableRawPointer(out + (j &+ o) &* outputStep).storeBytes(of: words[o], as: UInt32.self)
                o &+= 1
            }
        } else if outputStep == 1 && n == 4 {  // a row's four outputs: one word each
            let words = unsafeBitCast(csd_transpose4x4_u8(bytes), to: SIMD4<UInt32>.self)
            var r = 0
            while r < rows {
                UnsafeMutableRawPointer(out + (j &+ r &* rowStep)).storeBytes(of: words[r], as: UInt32.self)
                r &+= 1
            }
        } else {
            storeBytes(bytes, j, outputs: n)
        }
    }
}
extension StreamSink: PairSink {
    /// Whether a pair's passes of four outputs take `putOctX86`: eight rows, a row's outputs adjacent,
    /// a bias per output.
    @inline(__always) var octRows: Bool { rows == 8 && outputStep == 1 && paramRowStep == 0 }

    @inline(__always) mutating func dropFirstRows(_ n: Int) {
        stream += n &* rowStep
        biases += n &* paramRowStep
        rows &-= n
    }

    /// `putX86` for both blocks of a pair at once (`octRows`; self the pair's first sink, `lowerRows`):
    /// four outputs of eight rows, each output's rows one vector (`csd_hadd_i32x8` of the two blocks'
    /// sums) plus its bias, shifted, narrowed to int16 and laid out a row's four outputs together
    /// (`csd_halves_rows_i32x32`): one 64-bit store (set) or load, add and store (add) per row. Same
    /// values as two `putX86`.
    @inline(__always) func putOctX86(_ j: Int, _ acc: Kernels.PassSums) {
        let b = biases, ps = paramStep, sh = SIMD8<Int32>(repeating: shift & 31)
        @inline(__always) func value(_ x: SIMD8<Int32>, _ y: SIMD8<Int32>, _ o: Int) -> SIMD8<Int32> {
            (csd_hadd_i32x8(x, y) &+ SIMD8(repeating: b[(j &+ o) &* ps])) &>> sh
        }
        let rows = unsafeBitCast(csd_halves_rows_i32x32(value(acc.a0, acc.b0, 0), value(acc.a1, acc.b1, 1),
                                                        value(acc.a2, acc.b2, 2), value(acc.a3, acc.b3, 3)),
                                 to: SIMD8<UInt64>.self)
        let p = UnsafeMutableRawPointer(stream + j), step = rowStep &* 2
        var r = 0
        while r < 8 {
            if write == .set {
                p.storeBytes(of: rows[r], toByteOffset: r &* step, as: UInt64.self)
            } else {
                let sum = p.loadUnaligned(fromByteOffset: r &* step, as: SIMD4<Int16>.self) &+ unsafeBitCast(rows[r], to: SIMD4<Int16>.self)
                p.storeBytes(of: sum, toByteOffset: r &* step, as: SIMD4<Int16>.self)
            }
            r &+= 1
        }
    }

    /// `put` for outputs j ..< j + n (n 1 ... 4): lane 4o + r of s01 is output j + o, row r, of s23 output
    /// j + 2 + o. Four outputs of four rows, a row's outputs adjacent (tokens [N][D]: the stream's
    /// layout), at once: the sixteen values (acc + bias) >> shift in int32 lanes, narrowed to int16 and
    /// transposed, one 64-bit store (set) or load, add and store (add) per row. Otherwise output by
    /// output (`put`).
    @inline(__always) func putX86(_ j: Int, outputs n: Int, _ s01: SIMD8<Int32>, _ s23: SIMD8<Int32>) {
        guard n == 4 && rows == 4 && outputStep == 1 else {
            @inline(__always) func one(_ o: Int, _ a: SIMD4<Int32>) {
                put(j &+ o, UInt32(bitPattern: a[0]), UInt32(bitPattern: a[1]), UInt32(bitPattern: a[2]), UInt32(bitPattern: a[3]))
            }
            one(0, s01.lowHalf)
            if n > 1 { one(1, s01.highHalf) }
            if n > 2 { one(2, s23.lowHalf) }
            if n > 3 { one(3, s23.highHalf) }
            return
        }
        let b = biases, ps = paramStep, prs = paramRowStep, i0 = j &* ps
        @inline(__always) func four(_ i: Int) -> SIMD4<Int32> {  // output i's bias at the four rows
            prs == 0 ? SIMD4(repeating: b[i]) : SIMD4(b[i], b[i &+ prs], b[i &+ 2 &* prs], b[i &+ 3 &* prs])
        }
        let sh = SIMD8<Int32>(repeating: shift & 31)
        let v01 = (s01 &+ SIMD8(lowHalf: four(i0), highHalf: four(i0 &+ ps))) &>> sh
        let v23 = (s23 &+ SIMD8(lowHalf: four(i0 &+ 2 &* ps), highHalf: four(i0 &+ 3 &* ps))) &>> sh
        let words = unsafeBitCast(csd_transpose4x4_i16(csd_halves_i32x16(v01, v23)), to: SIMD4<UInt64>.self)
        var r = 0
        while r < 4 {
            let p = UnsafeMutableRawPointer(stream + (j &+ r &* rowStep))
            if write == .set {
                p.storeBytes(of: words[r], as: UInt64.self)
            } else {
                let sum = p.loadUnaligned(as: SIMD4<Int16>.self) &+ unsafeBitCast(words[r], to: SIMD4<Int16>.self)
                p.storeBytes(of: sum, as: SIMD4<Int16>.self)
            }
            r &+= 1
        }
    }
}
#endif
