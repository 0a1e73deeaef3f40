import CSDMachine

/// The x86-64 twin of the block dot (BlockDot.swift), for hosts: the packer's `verify`, the host
/// library. Same results to the bit as the portable loop: the same int32 products and wrapping
/// sums, in another order (addition mod 2^32 is associative). Per group of four inputs, the four
/// int16 weights are broadcast to the four block rows and one multiply-add of pairs
/// (`csd_madd_i16x16`: PMADDWD) gives 16 products summed in pairs; the pair sums of a row add up
/// at the end. int8 weights are widened as they are broadcast (`csd_bcast4_i8`). On x86 builds
/// the pixels' blocks are gathered in natural order (`Kernels.neuronOrder`; counts take byte blocks,
/// CountBlocksX86.swift), so weights need no permutation. Two outputs per pass; an odd last output
/// is paired with itself and its copy dropped. Selected at build time (`CSD_KERNELS_X86`, not with
/// `CSD_PLAIN_KERNELS`).
#if arch(x86_64)
extension Kernels {
    /// `blockDotNeurons` on x86-64: int8 weights, natural block; two outputs per pass (one block load
    /// for both, their eight neurons in one vector). A group's four weights are widened and broadcast as
    /// they are read (`csd_bcast4_i8`); a row's last group, when K is not a multiple of 4, is built
    /// lane by lane (zeros past K, no read past the row).
    public static func blockDotNeuronsX86(_ w: UnsafePointer<Int8>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                          outputs: Int, _ sink: inout NeuronSink) {
        let groups = k &>> 2, tail = k & 3, tailBlock = block + groups &* 32
        @inline(__always) func tailDot(_ row: UnsafePointer<Int8>, _ acc: inout SIMD8<Int32>) {
            let p = row + groups &* 4
            let w4 = UInt32(UInt8(bitPattern: p[0])) | (tail > 1 ? UInt32(UInt8(bitPattern: p[1])) &<< 8 : 0)
                | (tail > 2 ? UInt32(UInt8(bitPattern: p[2])) &<< 16 : 0)
            acc &+= csd_madd_i16x16(csd_bcast4_i8(Int32(bitPattern: w4)), tailBlock.loadUnaligned(as: SIMD16<Int16>.self))
        }
        var row = w, j = 0
        while j < outputs {
            let pair = j &+ 1 < outputs
            let row1 = pair ? row + wstride : row  // without a pair, output j twice (dropped by the sink)
            var acc0 = SIMD8<Int32>(repeating: 0), acc1 = acc0
            var p0 = UnsafeRawPointer(row), p1 = UnsafeRawPointer(row1), q = block, g = groups
            while g > 0 {
                let v = q.loadUnaligned(as: SIMD16<Int16>.self)
                acc0 &+= csd_madd_i16x16(csd_bcast4_i8(p0.loadUnaligned(as: Int32.self)), v)
                acc1 &+= csd_madd_i16x16(csd_bcast4_i8(p1.loadUnaligned(as: Int32.self)), v)
                p0 += 4
                p1 += 4
                q += 32
                g &-= 1
            }
            if tail != 0 {
                tailDot(row, &acc0)
                tailDot(row1, &acc1)
            }
            sink.putX86(j, SIMD8(lowHalf: csd_pairsum_i32x8(acc0), highHalf: csd_pairsum_i32x8(acc1)), pair: pair)
            row += 2 &* wstride
            j &+= 2
        }
    }

    /// `blockDotStream` on x86-64: int16 weights read where they lie, two outputs per pass; the last
    /// group of a row whose K is not a multiple of 4 is built lane by lane (zeros past K, no read past
    /// the row).
    public static func blockDotStreamX86(_ w: UnsafePointer<Int16>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                         outputs: Int, _ sink: StreamSink) {
        let groups = k &>> 2, tail = k & 3, tailBlock = block + groups &* 32
        @inline(__always) func tailDot(_ row: UnsafePointer<Int16>, _ acc: inout SIMD8<Int32>) {
            let p = row + groups &* 4
            let w4 = SIMD4<Int16>(p[0], tail > 1 ? p[1] : 0, tail > 2 ? p[2] : 0, 0)
            acc &+= csd_madd_i16x16(csd_bcast4_i16(unsafeBitCast(w4, to: Int64.self)), tailBlock.loadUnaligned(as: SIMD16<Int16>.self))
        }
        @inline(__always) func put(_ j: Int, _ acc: SIMD8<Int32>) {
            let a = csd_pairsum_i32x8(acc)
            sink.put(j, UInt32(bitPattern: a[0]), UInt32(bitPattern: a[1]), UInt32(bitPattern: a[2]), UInt32(bitPattern: a[3]))
        }
        var row = w, j = 0
        while j < outputs {
            let pair = j &+ 1 < outputs
            let row1 = pair ? row + wstride : row  // without a pair, output j twice (the copy not written)
            var acc0 = SIMD8<Int32>(repeating: 0), acc1 = acc0
            groupDots(UnsafeRawPointer(row), UnsafeRawPointer(row1), block, groups: groups, &acc0, &acc1)
            if tail != 0 {
                tailDot(row, &acc0)
                tailDot(row1, &acc1)
            }
            put(j, acc0)
            if pair { put(j &+ 1, acc1) }
            row += 2 &* wstride
            j &+= 2
        }
    }

    /// clip(floor(a / theta), 0, levels) per lane (theta >= 1, validated): `csd_counts_i32x8`, a float64
    /// division shown exact in csd_machine.h.
    @inline(__always) static func neuronCounts(_ a: SIMD8<Int32>, threshold theta: SIMD8<Int32>, levels: Int32) -> SIMD8<Int32> {
        csd_counts_i32x8(a, theta, levels)
    }

    /// acc_o lane 2r + h += the products of halves h of row r with weight row o, for `groups` groups:
    /// int16 weights at w0 and w1 (four per group, broadcast to the four rows by `csd_bcast4_i16`), the
    /// block at x (32 bytes per group, one load for both rows).
    @inline(__always) static func groupDots(_ w0: UnsafeRawPointer, _ w1: UnsafeRawPointer, _ x: UnsafeRawPointer, groups: Int,
                                            _ acc0: inout SIMD8<Int32>, _ acc1: inout SIMD8<Int32>) {
        var p0 = w0, p1 = w1, q = x, g = groups
        while g > 0 {
            let v = q.loadUnaligned(as: SIMD16<Int16>.self)
            acc0 &+= csd_madd_i16x16(csd_bcast4_i16(p0.loadUnaligned(as: Int64.self)), v)
            acc1 &+= csd_madd_i16x16(csd_bcast4_i16(p1.loadUnaligned(as: Int64.self)), v)
            p0 += 8
            p1 += 8
            q += 32
            g &-= 1
        }
    }
}

extension NeuronSink {
    /// `put` for outputs j and j + 1 (`pair`; else j alone) at once: lane 4o + r is output j + o, row r
    /// (lanes of rows >= `rows`, and of output j + 1 without `pair`, are computed from output j's row 0
    /// parameters and dropped; nothing is read past the parameters). The neuron formula in int32
    /// lanes, the counts by `Kernels.neuronCounts`, the outputs narrowed to bytes at once; four rows
    /// one byte apart are one 32-bit store.
    @inline(__always) mutating func putX86(_ j: Int, _ acc: SIMD8<Int32>, pair: Bool) {
        // the fields in locals: the byte stores below could alias them otherwise
        let th = thresholds, bs = biases, out = self.out, rows = self.rows, rowStep = self.rowStep, outputStep = self.outputStep
        let prs = paramRowStep, i0 = j &* paramStep, i1 = pair ? i0 &+ paramStep : i0
        let theta: SIMD8<Int32>, bias: SIMD8<Int32>
        if prs == 0 {  // a neuron per output (or one for all): two broadcasts
            theta = SIMD8(lowHalf: SIMD4(repeating: th[i0]), highHalf: SIMD4(repeating: th[i1]))
            bias = SIMD8(lowHalf: SIMD4(repeating: bs[i0]), highHalf: SIMD4(repeating: bs[i1]))
        } else {  // a neuron per row: lanes of rows past `rows` repeat row 0's
            let r1 = rows > 1 ? prs : 0, r2 = rows > 2 ? 2 &* prs : 0, r3 = rows > 3 ? 3 &* prs : 0
            theta = SIMD8(th[i0], th[i0 &+ r1], th[i0 &+ r2], th[i0 &+ r3], th[i1], th[i1 &+ r1], th[i1 &+ r2], th[i1 &+ r3])
            bias = SIMD8(bs[i0], bs[i0 &+ r1], bs[i0 &+ r2], bs[i0 &+ r3], bs[i1], bs[i1 &+ r1], bs[i1 &+ r2], bs[i1 &+ r3])
        }
        let a = (acc &<< SIMD8(repeating: shift & 31)) &+ bias &+ (theta &>> 1)
        let c = Kernels.neuronCounts(a, threshold: theta, levels: levels)
        // the lanes of real rows and outputs: all ones where (lane & 3) < rows and lane < 4 or 8 (sign bits)
        let lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
        let real = (((lane & 3) &- SIMD8(repeating: Int32(truncatingIfNeeded: rows)))
                    & (lane &- SIMD8(repeating: pair ? 8 : 4))) &>> 31
        spikes &+= UInt32(bitPattern: csd_sum_i32x8(c & real))
        var word = unsafeBitCast(csd_bytes_i32x8(output == .prefixTrains ? (SIMD8<Int32>(repeating: 1) &<< c) &- 1 : c),
                                 to: UInt64.self)
        var e = j &* outputStep, o = 0
        while o < (pair ? 2 : 1) {
            if rowStep == 1 && rows == 4 {
                UnsafeMutableRawPointer(out + e).storeBytes(of: UInt32(truncatingIfNeeded: word), as: UInt32.self)
            } else {
                out[e] = UInt8(truncatingIfNeeded: word)
                if rows > 1 { out[e &+ rowStep] = UInt8(truncatingIfNeeded: word &>> 8) }
                if rows > 2 { out[e &+ 2 &* rowStep] = UInt8(truncatingIfNeeded: word &>> 16) }
                if rows > 3 { out[e &+ 3 &* rowStep] = UInt8(truncatingIfNeeded: word &>> 24) }
            }
            word &>>= 32
            e &+= outputStep
            o &+= 1
        }
    }
}
#endif
