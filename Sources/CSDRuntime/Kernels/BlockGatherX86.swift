import CSDMachine

/// x86-64 hosts: the gathers into the twins' blocks (BlockGather.swift's `putRows` and `putPatches`
/// call them): byte blocks of counts (`BlockOrder.bytes`, CountBlocksX86.swift) from rows and 3x3
/// fields, and natural halfword blocks (the stream writers' counts: BlockDotX86.swift) from rows, a
/// word of eight values at a time where the portable gathers place a value at a time. A conv that
/// gathers a pair of blocks reads its fields from a zero-bordered copy of its input (`putFieldBlocks`,
/// bytes or natural halfwords, no bounds tests) when the copy fits the stack buffer after the pair;
/// otherwise byte blocks take `putPatchesBytes` and natural ones the portable gather.
#if arch(x86_64)
extension Kernels {
    /// `putRows` into a byte block: row r's value i at src[r * rowStride + i]; rows >= `rows` zero.
    static func putRowsBytes(_ block: UnsafeMutableRawPointer, _ src: UnsafePointer<UInt8>, rowStride: Int, rows: Int, k: Int) {
        var r = 0
        while r < 4 {
            var d = block + 8 &* r, i = 0
            if r >= rows {
                zeroByteRow(d, k: k)
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

    /// Zeros a row of a byte block of K values (`BlockOrder.bytes`) at d (the block plus 8r): its eight
    /// bytes of each group.
    @inline(__always) static func zeroByteRow(_ d: UnsafeMutableRawPointer, k: Int) {
        var d = d, i = 0
        while i < k {
            d.storeBytes(of: 0, as: UInt64.self)
            d += 32
            i &+= 8
        }
    }

    /// A 3x3 field row's three values at q as the low bytes of a word, its fourth byte 0 (two loads:
    /// nothing read past the three).
    @inline(__always) static func fieldRow(_ q: UnsafePointer<UInt8>) -> UInt32 {
        let r = UnsafeRawPointer(q)
        return UInt32(r.loadUnaligned(as: UInt16.self)) | UInt32(r.load(fromByteOffset: 2, as: UInt8.self)) &<< 16
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
        // nine words, and a tenth for the last field row's word store (one byte past the 72 values)
        var nine: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &nine) { words in
            let buf = words.baseAddress!
            var r = 0
            while r < 4 {
                var d = block + 8 &* r
                if r >= rows {
                    zeroByteRow(d, k: k)
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
                            if inside {  // three values per field row: one word store, its fourth byte 0 (the next
                                // field row's store overwrites it, or it is the group's padding)
                                UnsafeMutableRawPointer(o).storeBytes(of: fieldRow(p + dy &* w), as: UInt32.self)
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

    /// The bytes of a conv input's zero-bordered copy (`borderedCopy`, rows of w + 2 bytes) that
    /// `putFieldBlocks` reads.
    @inline(__always) @usableFromInline static func borderedBytes(cin: Int, h: Int, w: Int) -> Int {
        cin &* (h &+ 2) &* (w &+ 2)
    }

    /// `putPatchBlocks` (rows 1 ... 8: with more than four, the pair's second block blockBytes(9 cin)
    /// on) from the zero-bordered copy of the map (`borderedCopy` with rows of w + 2 bytes), so that
    /// no field needs a bounds test: a field row's three values are one word store, eight input
    /// channels (72 values, nine whole groups) are laid out on the stack and copied a group at a time,
    /// as bytes (`BlockOrder.bytes`) or widened into natural halfword blocks (`halves`: two groups per
    /// word, `putHalves`).
    @usableFromInline static func putFieldBlocks(_ block: UnsafeMutableRawPointer, _ map: UnsafePointer<UInt8>, cin: Int, h: Int, w: Int,
                               pos: Int, rows: Int, halves: Bool) {
        let k = 9 &* cin, rb = w &+ 2, planeBytes = (h &+ 2) &* rb
        // nine words, and a tenth for the last field row's word store (one byte past the 72 values)
        var nine: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &nine) { words in
            let buf = words.baseAddress!
            var r = 0
            let all = rows > 4 ? 8 : 4
            while r < all {
                let base = block + (r >= 4 ? blockBytes(k: k) : 0) + 8 &* (r & 3)
                if r >= rows {  // a missing row: zeros
                    if halves {
                        zeroRow(base - 8 &* (r & 3), row: r & 3, k: k)
                    } else {
                        zeroByteRow(base, k: k)
                    }
                    r &+= 1
                    continue
                }
                let at = pos &+ r
                let y = Int(csd_quot(Int32(truncatingIfNeeded: at), Int32(truncatingIfNeeded: w))), x = at &- y &* w
                var p = map + (y &* rb &+ x), d = base, c0 = 0  // the field's top left: bordered (y, x)
                while c0 < cin {
                    let n = min(8, cin &- c0)
                    buf.storeBytes(of: 0, toByteOffset: 8 &* ((9 &* n &- 1) &>> 3), as: UInt64.self)  // the last group's padding
                    var o = buf, c = 0
                    while c < n {
                        var q = p, dy = 0
                        while dy < 3 {  // three values, the word's fourth byte 0 (overwritten next, or padding)
                            o.storeBytes(of: fieldRow(q), as: UInt32.self)
                            o += 3
                            q += rb
                            dy &+= 1
                        }
                        p += planeBytes
                        c &+= 1
                    }
                    var g = 0
                    let values = 9 &* n, groups = (values &+ 7) &>> 3
                    while g < groups {
                        let word = buf.load(fromByteOffset: 8 &* g, as: UInt64.self)
                        if halves {
                            putHalves(d, word, two: values &- 8 &* g > 4)
                            d += 64
                        } else {
                            d.storeBytes(of: word, as: UInt64.self)
                            d += 32
                        }
                        g &+= 1
                    }
                    c0 &+= 8
                }
                r &+= 1
            }
        }
    }

    /// `putRows` into a natural halfword block: row r's value i at src[r * rowStride + i], eight values
    /// (two groups) per load, widened (`putHalves`); rows >= `rows` zero.
    static func putRowsHalves(_ block: UnsafeMutableRawPointer, _ src: UnsafePointer<UInt8>, rowStride: Int, rows: Int, k: Int) {
        var r = 0
        while r < 4 {
            if r >= rows {
                zeroRow(block, row: r, k: k)
            } else {
                var d = block + 8 &* r, i = 0
                let s = UnsafeRawPointer(src + r &* rowStride)
                while i &+ 8 <= k {
                    putHalves(d, s.loadUnaligned(fromByteOffset: i, as: UInt64.self), two: true)
                    d += 64
                    i &+= 8
                }
                if i < k {  // the last 1 ... 7 values, zeros after: one group or two
                    putHalves(d, lastBytes(s + i, k &- i), two: k &- i > 4)
                }
            }
            r &+= 1
        }
    }

    /// Eight uint8 values (v's bytes, little-endian) widened to halfwords: the first four as a group at
    /// d, with `two` the next four as the group 32 bytes on (PMOVZXBW).
    @inline(__always) static func putHalves(_ d: UnsafeMutableRawPointer, _ v: UInt64, two: Bool) {
        let words = unsafeBitCast(SIMD8<UInt16>(truncatingIfNeeded: unsafeBitCast(v, to: SIMD8<UInt8>.self)),
                                  to: SIMD2<UInt64>.self)
        d.storeBytes(of: words[0], as: UInt64.self)
        if two { d.storeBytes(of: words[1], toByteOffset: 32, as: UInt64.self) }
    }
}
#endif
