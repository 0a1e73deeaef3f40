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
    /// `blockDotNeurons` on x86-64 for a byte block: two outputs per pass, one block load for both,
    /// their eight neurons in one vector (`NeuronSink.putX86`).
    public static func blockDotCountsX86(_ w: UnsafePointer<Int8>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                         outputs: Int, _ sink: inout NeuronSink) {
        let groups = k &>> 3, tail = k & 7, tailBlock = block + groups &* 32
        var row = w, j = 0
        while j < outputs {
            let pair = j &+ 1 < outputs
            let row1 = pair ? row + wstride : row  // without a pair, output j twice (dropped by the sink), as BlockDotX86
            var acc0 = SIMD8<Int32>(repeating: 0), acc1 = acc0
            var p0 = UnsafeRawPointer(row), p1 = UnsafeRawPointer(row1), q = block, g = groups
            while g > 0 {
                let x = q.loadUnaligned(as: SIMD32<UInt8>.self)
                acc0 &+= csd_dot4_u8i8(x, csd_bcast8_i8(p0.loadUnaligned(as: Int64.self)))
                acc1 &+= csd_dot4_u8i8(x, csd_bcast8_i8(p1.loadUnaligned(as: Int64.self)))
                p0 += 8
                p1 += 8
                q += 32
                g &-= 1
            }
            if tail != 0 {  // the last 1 ... 7 weights, zeros after (no read past the row)
                let x = tailBlock.loadUnaligned(as: SIMD32<UInt8>.self)
                acc0 &+= csd_dot4_u8i8(x, csd_bcast8_i8(lastWeights(row + groups &* 8, tail)))
                acc1 &+= csd_dot4_u8i8(x, csd_bcast8_i8(lastWeights(row1 + groups &* 8, tail)))
            }
            sink.putX86(j, SIMD8(lowHalf: csd_pairsum_i32x8(acc0), highHalf: csd_pairsum_i32x8(acc1)), pair: pair)
            row += 2 &* wstride
            j &+= 2
        }
    }

    /// p[0 ..< n] (n < 8) as the low bytes of a word (little-endian), zeros after.
    @inline(__always) static func lastWeights(_ p: UnsafePointer<Int8>, _ n: Int) -> Int64 {
        var v: UInt64 = 0, i = 0
        while i < n {
            v |= UInt64(UInt8(bitPattern: p[i])) &<< UInt64(8 &* i)
            i &+= 1
        }
        return Int64(bitPattern: v)
    }

    /// `putRows` into a byte block: row r's value i at src[r * rowStride + i * stride]; rows >= `rows` zero.
    static func putRowsBytes(_ block: UnsafeMutableRawPointer, _ src: UnsafePointer<UInt8>, rowStride: Int, stride: Int,
                             rows: Int, k: Int) {
        var r = 0
        while r < 4 {
            var d = block + 8 &* r, i = 0
            if r >= rows {
                while i < k {
                    d.storeBytes(of: 0, as: UInt64.self)
                    d += 32
                    i &+= 8
                }
            } else if stride == 1 {
                let s = UnsafeRawPointer(src + r &* rowStride)
                while i &+ 8 <= k {
                    d.storeBytes(of: s.loadUnaligned(fromByteOffset: i, as: UInt64.self), as: UInt64.self)
                    d += 32
                    i &+= 8
                }
            }
            if r < rows && i < k {  // strided values, or the last group's 1 ... 7
                var s = src + (r &* rowStride &+ i &* stride)
                while i < k {
                    var v: UInt64 = 0, b: UInt64 = 0
                    while b < 64 && i < k {
                        v |= UInt64(s.pointee) &<< b
                        s += stride
                        b &+= 8
                        i &+= 1
                    }
                    d.storeBytes(of: v, as: UInt64.self)
                    d += 32
                }
            }
            r &+= 1
        }
    }

    /// `putPatches` into a byte block: rows from the 3x3 receptive fields of positions pos ..< pos + rows
    /// of a uint8 map [cin][h][w], zero outside the map, value k = (i * 3 + dy) * 3 + dx at byte
    /// 32 (k / 8) + 8r + k % 8; rows >= `rows` zero.
    @inline(never)
    static func putPatchesBytes(_ block: UnsafeMutableRawPointer, _ input: UnsafePointer<UInt8>, cin: Int, h: Int, w: Int,
                                pos: Int, rows: Int) {
        let k = 9 &* cin, plane = h &* w
        var r = 0
        while r < 4 {
            let d = block + 8 &* r
            var i = 0  // the value index
            if r < rows {
                let at = pos &+ r
                let y = Int(csd_quot(Int32(truncatingIfNeeded: at), Int32(truncatingIfNeeded: w))), x = at &- y &* w
                var p = input + ((y &- 1) &* w &+ (x &- 1))
                let inside = y > 0 && y < h &- 1 && x > 0 && x < w &- 1
                var c = 0
                while c < cin {
                    var dy = 0
                    while dy < 3 {
                        let rowOK = inside || (y &+ dy >= 1 && y &+ dy <= h)
                        var dx = 0
                        while dx < 3 {
                            let v = inside || (rowOK && x &+ dx >= 1 && x &+ dx <= w) ? p[dy &* w &+ dx] : 0
                            d.storeBytes(of: v, toByteOffset: (i &>> 3) &* 32 &+ (i & 7), as: UInt8.self)
                            i &+= 1
                            dx &+= 1
                        }
                        dy &+= 1
                    }
                    p += plane
                    c &+= 1
                }
            }
            while i < k || i & 7 != 0 {  // a row past `rows`, and the last group's padding
                d.storeBytes(of: 0, toByteOffset: (i &>> 3) &* 32 &+ (i & 7), as: UInt8.self)
                i &+= 1
            }
            r &+= 1
        }
    }
}
#endif
