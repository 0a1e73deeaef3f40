import CSDMachine

/// x86-64 hosts: blocks of counts as bytes, and their block dot (the twin of `blockDotNeurons` for
/// count inputs). Counts (<= 16) times int8 weights fit the byte multiply-add of pairs
/// (`csd_dot4_u8i8`: PMADDUBSW, exact while a pair's sum fits int16, as it does for values <= 127),
/// so neither weights nor counts are widened: per group of eight inputs, the eight weights are
/// broadcast to the four rows and one instruction pair gives 32 products summed in fours.
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
        var lower = sink.lowerRows(two), upper = sink.upperRows(two), spikes = SIMD8<Int32>(repeating: 0), j = 0
        while j &+ 4 <= outputs {  // whole passes: n == 4 is a constant in the inlined pass
            countsPass(w, wstride: wstride, block, k: k, j, 4, two, &lower, &upper, &spikes)
            j &+= 4
        }
        if j < outputs {
            countsPass(w, wstride: wstride, block, k: k, j, outputs &- j, two, &lower, &upper, &spikes)
        }
        sink.spikes &+= UInt32(bitPattern: csd_sum_i32x8(spikes))
    }

    /// One pass of `blockDotCountsX86`: outputs j ..< j + n (n 1 ... 4), with `two` of both blocks of the
    /// pair (the second block's neurons into `upper`).
    @inline(__always) static func countsPass(_ w: UnsafePointer<Int8>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                             _ j: Int, _ n: Int, _ two: Bool, _ sink: inout NeuronSink,
                                             _ upper: inout NeuronSink, _ spikes: inout SIMD8<Int32>) {
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
        sink.putX86(j, outputs: n, acc.first.0, acc.first.1, &spikes)
        if two { upper.putX86(j, outputs: n, acc.second.0, acc.second.1, &spikes) }
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
        acc.a0 &+= csd_dot4_u8i8(x, w0)
        acc.a1 &+= csd_dot4_u8i8(x, w1)
        acc.a2 &+= csd_dot4_u8i8(x, w2)
        acc.a3 &+= csd_dot4_u8i8(x, w3)
        if two {
            let y = q.loadUnaligned(fromByteOffset: second, as: SIMD32<UInt8>.self)
            acc.b0 &+= csd_dot4_u8i8(y, w0)
            acc.b1 &+= csd_dot4_u8i8(y, w1)
            acc.b2 &+= csd_dot4_u8i8(y, w2)
            acc.b3 &+= csd_dot4_u8i8(y, w3)
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

    /// `putRows` into a byte block: row r's value i at src[r * rowStride + i]; rows >= `rows` zero.
    static func putRowsBytes(_ block: UnsafeMutableRawPointer, _ src: UnsafePointer<UInt8>, rowStride: Int, rows: Int, k: Int) {
        var r = 0
        while r < 4 {
            var d = block + 8 &* r, i = 0
            if r >= rows {
                while i < k {
                    d.storeBytes(of: 0, as: UInt64.self)
                    d += 32
                    i &+= 8
                }
            } else {
                let s = UnsafeRawPointer(src + r &* rowStride)
                while i &+ 8 <= k {
                    d.storeBytes(of: s.loadUnaligned(fromByteOffset: i, as: UInt64.self), as: UInt64.self)
                    d += 32
                    i &+= 8
                }
                if i < k {  // the last group's 1 ... 7 values, zeros after
                    d.storeBytes(of: lastBytes(s + i, k &- i), as: UInt64.self)
                }
            }
            r &+= 1
        }
    }

    /// `putPatches` into a byte block: rows from the 3x3 receptive fields of positions pos ..< pos + rows
    /// of a uint8 map [cin][h][w], zero outside the map, value k = (i * 3 + dy) * 3 + dx at byte
    /// 32 (k / 8) + 8r + k % 8; rows >= `rows` zero. Eight input channels are 72 values, nine whole
    /// groups: a row's values are laid out eight channels at a time in nine words on the stack (three
    /// per field row inside the map), then copied a group at a time.
    @inline(never)
    static func putPatchesBytes(_ block: UnsafeMutableRawPointer, _ input: UnsafePointer<UInt8>, cin: Int, h: Int, w: Int,
                                pos: Int, rows: Int) {
        let k = 9 &* cin, plane = h &* w
        var nine: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &nine) { words in
            let buf = words.baseAddress!
            var r = 0
            while r < 4 {
                var d = block + 8 &* r
                if r >= rows {
                    var i = 0
                    while i < k {
                        d.storeBytes(of: 0, as: UInt64.self)
                        d += 32
                        i &+= 8
                    }
                    r &+= 1
                    continue
                }
                let at = pos &+ r
                let y = Int(csd_quot(Int32(truncatingIfNeeded: at), Int32(truncatingIfNeeded: w))), x = at &- y &* w
                let inside = y > 0 && y < h &- 1 && x > 0 && x < w &- 1
                var p = input + ((y &- 1) &* w &+ (x &- 1)), c0 = 0
                while c0 < cin {
                    let n = min(8, cin &- c0)
                    buf.storeBytes(of: 0, toByteOffset: 8 &* ((9 &* n &- 1) &>> 3), as: UInt64.self)  // the last group's padding
                    var o = buf.assumingMemoryBound(to: UInt8.self), c = 0
                    while c < n {
                        var dy = 0
                        while dy < 3 {
                            if inside {  // three values per field row
                                let q = p + dy &* w
                                o[0] = q[0]
                                o[1] = q[1]
                                o[2] = q[2]
                            } else {
                                let rowOK = y &+ dy >= 1 && y &+ dy <= h
                                var dx = 0
                                while dx < 3 {
                                    o[dx] = rowOK && x &+ dx >= 1 && x &+ dx <= w ? p[dy &* w &+ dx] : 0
                                    dx &+= 1
                                }
                            }
                            o += 3
                            dy &+= 1
                        }
                        p += plane
                        c &+= 1
                    }
                    var g = 0
                    let groups = (9 &* n &+ 7) &>> 3
                    while g < groups {
                        d.storeBytes(of: buf.load(fromByteOffset: 8 &* g, as: UInt64.self), as: UInt64.self)
                        d += 32
                        g &+= 1
                    }
                    c0 &+= 8
                }
                r &+= 1
            }
        }
    }
}
#endif
