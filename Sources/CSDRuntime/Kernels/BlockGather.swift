import CSDMachine

/// The fused kernels compute four dot products at once: four "rows" (tokens, conv positions,
/// queries or their scores rows) against one weight row of K int8 (or int16) values. The gathers
/// expand the rows once per block into the arena's kernel scratch (docs/FORMAT.md, "Kernel
/// scratch"), as 16-bit lanes, so every value is unpacked once per block instead of once per output.
///
/// Block layout (uint32 words; K rounded up to a multiple of 4, padding 0): group g of row r
/// (values k = 4g ..< 4g + 4) is the two words 8g + 2r, 8g + 2r + 1, in one of two orders:
public enum BlockOrder {
    /// (v[4g] | v[4g+2] << 16), (v[4g+1] | v[4g+3] << 16): SXTB16 of four int8 weights gives
    /// lanes 0 and 2, then 1 and 3 (int8 weights).
    case interleaved
    /// (v[4g] | v[4g+1] << 16), (v[4g+2] | v[4g+3] << 16): int16 weight pairs as they lie
    /// (the int16 weights of stream writers; on x86-64 also pixels against int8 weights).
    case natural
    /// x86-64 only, counts against int8 weights: not halfwords but bytes, eight values per row and
    /// group (CountBlocksX86.swift).
    case bytes
}

extension Kernels {
    /// The order of the blocks of int8-weight (neuron) ops: interleaved for the Cortex-M4 twin's
    /// SXTB16 and the portable loop; on x86-64 bytes for counts (`blockDotCountsX86`), natural for
    /// pixels (`blockDotNeuronsX86` widens the weights as they lie).
    @inline(__always) public static func neuronOrder(pixels: Bool) -> BlockOrder {
        useX86Twins ? (pixels ? .natural : .bytes) : .interleaved
    }

    /// Bytes of a block for K values: four rows of K rounded up to 4, 16-bit lanes.
    @inlinable public static func blockBytes(k: Int) -> Int { ((k &+ 3) &>> 2) &* 32 }

    /// Four values (0 ... 255: pixels or counts) as the two words of one group of a block row.
    @inline(__always) static func putGroup(_ d: UnsafeMutableRawPointer, _ v0: UInt32, _ v1: UInt32, _ v2: UInt32,
                                           _ v3: UInt32, _ order: BlockOrder) {
        let natural = order == .natural
        d.storeBytes(of: v0 | (natural ? v1 : v2) &<< 16, as: UInt32.self)
        d.storeBytes(of: (natural ? v2 : v1) | v3 &<< 16, toByteOffset: 4, as: UInt32.self)
    }

    /// Row r of the block from the k contiguous uint8 values at src (the padding of the last group
    /// included). Cortex-M4: a word at a time (UXTB16 gives (v0, v2), (v1, v3)).
    @inline(__always) static func putRow(_ block: UnsafeMutableRawPointer, row r: Int, _ src: UnsafePointer<UInt8>,
                                         k: Int, order: BlockOrder) {
        var d = block + 8 &* r, s = src, g = k &>> 2
        let tail = k & 3
        if useM4Twins {
            // one loop per order (the order tested once, not per group: 9 instructions a group interleaved)
            if order == .natural {
                while g > 0 {
                    let v = UnsafeRawPointer(s).loadUnaligned(as: UInt32.self)
                    let lo = csd_uxtb16(v), hi = csd_uxtb16(v &>> 8 | v &<< 24)
                    d.storeBytes(of: (lo & 0xFFFF) | hi &<< 16, as: UInt32.self)
                    d.storeBytes(of: lo &>> 16 | (hi & 0xFFFF_0000), toByteOffset: 4, as: UInt32.self)
                    s += 4
                    d += 32
                    g &-= 1
                }
            } else {
                while g > 0 {
                    let v = UnsafeRawPointer(s).loadUnaligned(as: UInt32.self)
                    d.storeBytes(of: csd_uxtb16(v), as: UInt32.self)
                    d.storeBytes(of: csd_uxtb16(v &>> 8 | v &<< 24), toByteOffset: 4, as: UInt32.self)
                    s += 4
                    d += 32
                    g &-= 1
                }
            }
        }
        // the values of a group's two words, chosen once: (v0, v1), (v2, v3) natural; (v0, v2), (v1, v3) interleaved
        let second = order == .natural ? 1 : 2, third = order == .natural ? 2 : 1
        while g > 0 {
            d.storeBytes(of: UInt32(s[0]) | UInt32(s[second]) &<< 16, as: UInt32.self)
            d.storeBytes(of: UInt32(s[third]) | UInt32(s[3]) &<< 16, toByteOffset: 4, as: UInt32.self)
            s += 4
            d += 32
            g &-= 1
        }
        if tail != 0 {
            putGroup(d, UInt32(s[0]), tail > 1 ? UInt32(s[1]) : 0, tail > 2 ? UInt32(s[2]) : 0, 0, order)
        }
    }

    /// Row r of the block set to zero (a row past the end of the data).
    @inline(__always) static func zeroRow(_ block: UnsafeMutableRawPointer, row r: Int, k: Int) {
        var d = block + 8 &* r
        let end = d + blockBytes(k: k)
        while d != end {
            d.storeBytes(of: 0, as: UInt32.self)
            d.storeBytes(of: 0, toByteOffset: 4, as: UInt32.self)
            d += 32
        }
    }

    /// `putRows` for `rows` 1 ... 8: rows 4 ..< rows into a pair's second block, blockBytes(k) after
    /// the first (x86-64 hosts, `pairBlocks`).
    @inline(__always)
    public static func putRowBlocks(_ block: UnsafeMutableRawPointer, _ src: UnsafePointer<UInt8>, rowStride: Int,
                                    rows: Int, k: Int, order: BlockOrder) {
        #if arch(x86_64)
        if rows > 4 {
            putRows(block, src, rowStride: rowStride, rows: 4, k: k, order: order)
            putRows(block + blockBytes(k: k), src + 4 &* rowStride, rowStride: rowStride, rows: rows &- 4, k: k, order: order)
            return
        }
        #endif
        putRows(block, src, rowStride: rowStride, rows: rows, k: k, order: order)
    }

    /// `putPatches` for `rows` 1 ... 8: positions pos + 4 ..< pos + rows into a pair's second block,
    /// blockBytes(9 cin) after the first (x86-64 hosts, `pairBlocks`).
    @inline(__always)
    public static func putPatchBlocks(_ block: UnsafeMutableRawPointer, _ input: UnsafePointer<UInt8>, cin: Int, h: Int,
                                      w: Int, pos: Int, rows: Int, order: BlockOrder) {
        #if arch(x86_64)
        if rows > 4 {
            putPatches(block, input, cin: cin, h: h, w: w, pos: pos, rows: 4, order: order)
            putPatches(block + blockBytes(k: 9 &* cin), input, cin: cin, h: h, w: w, pos: pos &+ 4, rows: rows &- 4,
                       order: order)
            return
        }
        #endif
        putPatches(block, input, cin: cin, h: h, w: w, pos: pos, rows: rows, order: order)
    }

    /// The four rows of a block from `rows` (1 ... 4) uint8 rows of k contiguous values: row r's value i
    /// at src[r * rowStride + i] (tokens: counts [N][K]; the attention pair: a query's head channels of
    /// q, and its scores row); rows >= `rows` are zero.
    @inline(never)
    public static func putRows(_ block: UnsafeMutableRawPointer, _ src: UnsafePointer<UInt8>, rowStride: Int,
                               rows: Int, k: Int, order: BlockOrder) {
        #if arch(x86_64)
        if useX86Twins && order == .bytes {
            putRowsBytes(block, src, rowStride: rowStride, rows: rows, k: k)
            return
        }
        if useX86Twins && order == .natural {
            putRowsHalves(block, src, rowStride: rowStride, rows: rows, k: k)
            return
        }
        #endif
        var r = 0
        while r < 4 {
            if r < rows {
                putRow(block, row: r, src + r &* rowStride, k: k, order: order)
            } else {
                zeroRow(block, row: r, k: k)
            }
            r &+= 1
        }
    }

    /// Row r from the 3x3 receptive field of position pos = y * w + x of a uint8 map [cin][h][w]
    /// (pixels or counts), zero outside the map, in the weights' order [cin][3][3]: value
    /// k = (i * 3 + dy) * 3 + dx. The destination walks the block's lanes with a step per k % 4
    /// (bytes, packed in `steps` and rotated: interleaved 0 -> 2 -> 1 -> 3 -> next group, natural
    /// in order).
    @inline(never)
    static func putPatch(_ block: UnsafeMutableRawPointer, row r: Int, _ input: UnsafePointer<UInt8>, cin: Int, h: Int,
                         w: Int, pos: Int, order: BlockOrder) {
        let y = Int(csd_quot(Int32(truncatingIfNeeded: pos), Int32(truncatingIfNeeded: w))), x = pos &- y &* w
        var steps: UInt32 = order == .natural ? 0x1A02_0202 : 0x1A04_FE04  // +2 +2 +2 +26, or +4 -2 +4 +26
        var dst = block + 8 &* r
        let plane = h &* w
        // which of the window's rows and columns lie inside the map
        let rowsIn: UInt32 = (y > 0 ? 1 : 0) | 2 | (y < h &- 1 ? 4 : 0)
        let colsIn: UInt32 = (x > 0 ? 1 : 0) | 2 | (x < w &- 1 ? 4 : 0)
        var p = input + ((y &- 1) &* w &+ (x &- 1))
        var i = 0
        if rowsIn == 7 && colsIn == 7 {
            while i < cin {
                var row = p
                var dy = 0
                while dy < 3 {
                    dst.storeBytes(of: UInt16(row[0]), as: UInt16.self)
                    dst += Int(Int8(truncatingIfNeeded: steps))
                    steps = steps &>> 8 | steps &<< 24
                    dst.storeBytes(of: UInt16(row[1]), as: UInt16.self)
                    dst += Int(Int8(truncatingIfNeeded: steps))
                    steps = steps &>> 8 | steps &<< 24
                    dst.storeBytes(of: UInt16(row[2]), as: UInt16.self)
                    dst += Int(Int8(truncatingIfNeeded: steps))
                    steps = steps &>> 8 | steps &<< 24
                    row += w
                    dy &+= 1
                }
                p += plane
                i &+= 1
            }
        } else {
            while i < cin {
                var row = p
                var dy = 0
                while dy < 3 {
                    let rowOK = (rowsIn &>> UInt32(truncatingIfNeeded: dy)) & 1 != 0
                    var dx = 0
                    while dx < 3 {
                        let inside = rowOK && (colsIn &>> UInt32(truncatingIfNeeded: dx)) & 1 != 0
                        dst.storeBytes(of: inside ? UInt16(row[dx]) : 0, as: UInt16.self)
                        dst += Int(Int8(truncatingIfNeeded: steps))
                        steps = steps &>> 8 | steps &<< 24
                        dx &+= 1
                    }
                    row += w
                    dy &+= 1
                }
                p += plane
                i &+= 1
            }
        }
        var padding = (0 &- 9 &* cin) & 3  // to the end of the last group
        while padding != 0 {
            dst.storeBytes(of: 0, as: UInt16.self)
            dst += Int(Int8(truncatingIfNeeded: steps))
            steps = steps &>> 8 | steps &<< 24
            padding &-= 1
        }
    }

    /// The four rows of a block from the receptive fields of positions pos ..< pos + rows (conv3x3,
    /// stride 1, zero padding 1; k = 9 cin); rows >= `rows` are zero.
    @inline(__always)
    public static func putPatches(_ block: UnsafeMutableRawPointer, _ input: UnsafePointer<UInt8>, cin: Int, h: Int, w: Int,
                                  pos: Int, rows: Int, order: BlockOrder) {
        #if arch(x86_64)
        if useX86Twins && order == .bytes {
            putPatchesBytes(block, input, cin: cin, h: h, w: w, pos: pos, rows: rows)
            return
        }
        #endif
        var r = 0
        while r < 4 {
            if r < rows {
                putPatch(block, row: r, input, cin: cin, h: h, w: w, pos: pos &+ r, order: order)
            } else {
                zeroRow(block, row: r, k: 9 &* cin)
            }
            r &+= 1
        }
    }
}
