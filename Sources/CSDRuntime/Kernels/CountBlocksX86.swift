import CSDMachine

/// x86-64 hosts: blocks of counts as bytes (gathered by BlockGatherX86.swift), and their block dot (the twin of `blockDotNeurons` for
/// count inputs). Counts (<= 16) times int8 weights fit the byte multiply-add of pairs
/// (`csd_dot4_u8i8`: PMADDUBSW, exact while a pair's sum fits int16, as it does for values <= 127),
/// so neither weights nor counts are widened: per group of eight inputs, the eight weights are
/// broadcast to the four rows and one instruction pair gives 32 products summed in fours
/// (`csd_dot4acc_u8i8`, which adds them to the lanes: one VPDPBUSD on VNNI builds).
///
/// Byte layout (`BlockOrder.bytes`): K rounded up to a multiple of 8, padding 0; values
/// 8g ..< 8g + 8 of row r are bytes 32g + 8r ..< 32g + 8r + 8. A block takes half the bytes of a
/// halfword block (`blockBytes`), so it fits the same scratch. Pixels (up to 255) keep the halfword
/// blocks and `blockDotNeuronsX86`.
#if arch(x86_64)
extension Kernels {
    /// `blockDotNeurons` on x86-64 for a byte block: four outputs per pass, one block load for the
    /// four, their sixteen neurons in two vectors (`NeuronSink.putX86`). A sink of more than four rows
    /// takes a pair of blocks (`pairBlocks`): each weight group, read once, meets both.
    public static func blockDotCountsX86(_ w: UnsafePointer<Int8>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                         outputs: Int, _ sink: inout NeuronSink) {
        if sink.rows > 4 {
            countsX86(w, wstride: wstride, block, k: k, outputs: outputs, two: true, &sink)
        } else {
            countsX86(w, wstride: wstride, block, k: k, outputs: outputs, two: false, &sink)
        }
    }

    /// `blockDotCountsX86` for one block or (`two`) a pair.
    @inline(__always) static func countsX86(_ w: UnsafePointer<Int8>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                            outputs: Int, two: Bool, _ sink: inout NeuronSink) {
        let lower = sink.lowerRows(two), upper = sink.upperRows(two)
        var spikes = SIMD8<Int32>(repeating: 0), j = 0
        if two && sink.octRows {  // eight rows: the pair's neurons at once (`putOctX86`)
            while j &+ 4 <= outputs {
                lower.putOctX86(j, countsSums(w, wstride: wstride, block, k: k, j, 4, two), &spikes)
                j &+= 4
            }
        } else {
            while j &+ 4 <= outputs {  // whole passes: n == 4 is a constant in the inlined pass
                countsPass(w, wstride: wstride, block, k: k, j, 4, two, lower, upper, &spikes)
                j &+= 4
            }
        }
        if j < outputs {
            countsPass(w, wstride: wstride, block, k: k, j, outputs &- j, two, lower, upper, &spikes)
        }
        sink.spikes &+= UInt32(bitPattern: csd_sum_i32x8(spikes))
    }

    /// One pass of `blockDotCountsX86`: outputs j ..< j + n (n 1 ... 4), with `two` of both blocks of the
    /// pair (the second block's neurons into `upper`).
    @inline(__always) static func countsPass(_ w: UnsafePointer<Int8>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                             _ j: Int, _ n: Int, _ two: Bool, _ sink: NeuronSink, _ upper: NeuronSink,
                                             _ spikes: inout SIMD8<Int32>) {
        let acc = countsSums(w, wstride: wstride, block, k: k, j, n, two)
        sink.putX86(j, outputs: n, acc.first.0, acc.first.1, &spikes)
        if two { upper.putX86(j, outputs: n, acc.second.0, acc.second.1, &spikes) }
    }

    /// The accumulators of outputs j ..< j + n (n 1 ... 4) against the block, with `two` against both
    /// blocks of the pair.
    @inline(__always) static func countsSums(_ w: UnsafePointer<Int8>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                             _ j: Int, _ n: Int, _ two: Bool) -> PassSums {
        let groups = k &>> 3, tail = k & 7, second = blockBytes(k: k)
        let (r0, r1, r2, r3) = quadRows(w, wstride: wstride, j, n)
        var acc = PassSums()
        var q = block, off = 0, g = groups
        while g > 0 {
            countsGroup(&acc, q, second, two, byteWeights(r0 + off), byteWeights(r1 + off), byteWeights(r2 + off),
                        byteWeights(r3 + off))
            off &+= 8
            q += 32
            g &-= 1
        }
        if tail != 0 {  // the last 1 ... 7 weights, zeros after (no read past the row)
            countsGroup(&acc, q, second, two, csd_bcast8_i8(lastWeights(r0 + off, tail)), csd_bcast8_i8(lastWeights(r1 + off, tail)),
                        csd_bcast8_i8(lastWeights(r2 + off, tail)), csd_bcast8_i8(lastWeights(r3 + off, tail)))
        }
        return acc
    }

    /// Eight weights at p broadcast to a byte block's four rows.
    @inline(__always) static func byteWeights(_ p: UnsafePointer<Int8>) -> SIMD32<Int8> {
        csd_bcast8_i8(UnsafeRawPointer(p).loadUnaligned(as: Int64.self))
    }

    /// One group of a byte block at q (and with `two` of the pair's second block, `second` bytes on)
    /// against four weight rows' broadcast groups.
    @inline(__always) static func countsGroup(_ acc: inout PassSums, _ q: UnsafeRawPointer, _ second: Int, _ two: Bool,
                                              _ w0: SIMD32<Int8>, _ w1: SIMD32<Int8>, _ w2: SIMD32<Int8>, _ w3: SIMD32<Int8>) {
        let x = q.loadUnaligned(as: SIMD32<UInt8>.self)
        acc.a0 = csd_dot4acc_u8i8(acc.a0, x, w0)
        acc.a1 = csd_dot4acc_u8i8(acc.a1, x, w1)
        acc.a2 = csd_dot4acc_u8i8(acc.a2, x, w2)
        acc.a3 = csd_dot4acc_u8i8(acc.a3, x, w3)
        if two {
            let y = q.loadUnaligned(fromByteOffset: second, as: SIMD32<UInt8>.self)
            acc.b0 = csd_dot4acc_u8i8(acc.b0, y, w0)
            acc.b1 = csd_dot4acc_u8i8(acc.b1, y, w1)
            acc.b2 = csd_dot4acc_u8i8(acc.b2, y, w2)
            acc.b3 = csd_dot4acc_u8i8(acc.b3, y, w3)
        }
    }

    /// The bytes p[0 ..< n] (n < 8) as the low bytes of a word (little-endian), zeros after; nothing read
    /// past them (a row's last, partial group).
    @inline(__always) static func lastBytes(_ p: UnsafeRawPointer, _ n: Int) -> UInt64 {
        var v: UInt64 = 0, i = 0
        while i < n {
            v |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) &<< UInt64(8 &* i)
            i &+= 1
        }
        return v
    }

    /// `lastBytes` of int8 weights.
    @inline(__always) static func lastWeights(_ p: UnsafePointer<Int8>, _ n: Int) -> Int64 {
        Int64(bitPattern: lastBytes(p, n))
    }
}
#endif
