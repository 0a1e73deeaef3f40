import CSDMachine

/// The x86-64 twin of the block dot (BlockDot.swift), for hosts: the packer's `verify`, the host
/// library. Same results to the bit as the portable loop: the same int32 products and wrapping
/// sums, in another order (addition mod 2^32 is associative). Per group of four inputs, the four
/// int16 weights are broadcast to the four block rows and one multiply-add of pairs
/// (`csd_madd_i16x16`: PMADDWD) gives 16 products summed in pairs; the pair sums of a row add up
/// at the end. int8 weights are widened 256 at a time into a stack buffer first. On x86 builds
/// the neuron blocks are gathered in natural order (`Kernels.neuronOrder`), so weights need no
/// permutation. Selected at build time (`CSD_KERNELS_X86`, not with `CSD_PLAIN_KERNELS`).
#if arch(x86_64)
extension Kernels {
    /// Weights widened per pass of the int8 twin (int16 stack buffer).
    @usableFromInline static let x86Chunk = 256

    /// `blockDotNeurons` on x86-64: int8 weights, natural block.
    public static func blockDotNeuronsX86(_ w: UnsafePointer<Int8>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                          outputs: Int, _ sink: inout NeuronSink) {
        withUnsafeTemporaryAllocation(of: Int16.self, capacity: x86Chunk) { buffer in
            let wide = buffer.baseAddress!
            var row = w, j = 0
            while j < outputs {
                var acc = SIMD8<Int32>(repeating: 0), done = 0
                while done < k {
                    let n = min(k &- done, x86Chunk)
                    widen(row + done, count: n, wide)
                    groupDots(UnsafeRawPointer(wide), block + (done &>> 2) &* 32, groups: (n &+ 3) &>> 2, &acc)
                    done &+= n
                }
                sink.putX86(j, csd_pairsum_i32x8(acc))
                row += wstride
                j &+= 1
            }
        }
    }

    /// `blockDotStream` on x86-64: int16 weights read where they lie; the last group of a row whose
    /// K is not a multiple of 4 is built lane by lane (zeros past K, no read past the row).
    public static func blockDotStreamX86(_ w: UnsafePointer<Int16>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                         outputs: Int, _ sink: StreamSink) {
        let groups = k &>> 2, tail = k & 3, tailBlock = block + groups &* 32
        var row = w, j = 0
        while j < outputs {
            var acc = SIMD8<Int32>(repeating: 0)
            groupDots(UnsafeRawPointer(row), block, groups: groups, &acc)
            if tail != 0 {
                let p = row + groups &* 4
                let w4 = SIMD4<Int16>(p[0], tail > 1 ? p[1] : 0, tail > 2 ? p[2] : 0, 0)
                acc &+= csd_madd_i16x16(broadcast(w4), tailBlock.loadUnaligned(as: SIMD16<Int16>.self))
            }
            let a = csd_pairsum_i32x8(acc)
            sink.put(j, UInt32(bitPattern: a[0]), UInt32(bitPattern: a[1]), UInt32(bitPattern: a[2]), UInt32(bitPattern: a[3]))
            row += wstride
            j &+= 1
        }
    }

    /// clip(floor(a / theta), 0, levels) per lane without a division (theta >= 1, validated): the
    /// number of times theta can be taken from a while a >= theta, at most `levels` times; a lane
    /// below theta takes nothing (a < 0 included), and no subtraction leaves [0, 2^31).
    @inline(__always) static func neuronCounts(_ a: SIMD4<Int32>, threshold theta: SIMD4<Int32>, levels: Int32) -> SIMD4<Int32> {
        var rest = a, c = SIMD4<Int32>(repeating: 0), m: Int32 = 0
        while m < levels {
            let fire = rest .>= theta
            rest.replace(with: rest &- theta, where: fire)
            c.replace(with: c &+ 1, where: fire)
            m &+= 1
        }
        return c
    }

    /// Four int16 weights in every row position of a group.
    @inline(__always) static func broadcast(_ w4: SIMD4<Int16>) -> SIMD16<Int16> {
        let w8 = SIMD8(lowHalf: w4, highHalf: w4)
        return SIMD16(lowHalf: w8, highHalf: w8)
    }

    /// acc lane 2r + h += the products of halves h of row r, for `groups` groups: int16 weights at w
    /// (four per group), the block at x (32 bytes per group).
    @inline(__always) static func groupDots(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, groups: Int,
                                            _ acc: inout SIMD8<Int32>) {
        var p = w, q = x, g = groups
        while g > 0 {
            acc &+= csd_madd_i16x16(broadcast(p.loadUnaligned(as: SIMD4<Int16>.self)), q.loadUnaligned(as: SIMD16<Int16>.self))
            p += 8
            q += 32
            g &-= 1
        }
    }

    /// n int8 weights (n <= x86Chunk) into int16 lanes at out, zeros up to the next multiple of 4;
    /// sixteen at a time, the rest one by one (no read past the n weights).
    @inline(__always) static func widen(_ w: UnsafePointer<Int8>, count n: Int, _ out: UnsafeMutablePointer<Int16>) {
        var i = 0
        let src = UnsafeRawPointer(w), dst = UnsafeMutableRawPointer(out)
        while i &+ 16 <= n {
            dst.storeBytes(of: csd_widen_i8x16(src.loadUnaligned(fromByteOffset: i, as: SIMD16<Int8>.self)),
                           toByteOffset: 2 &* i, as: SIMD16<Int16>.self)
            i &+= 16
        }
        while i < n {
            out[i] = Int16(w[i])
            i &+= 1
        }
        while i & 3 != 0 {
            out[i] = 0
            i &+= 1
        }
    }
}

extension NeuronSink {
    /// `put` for the four rows at once (lane r: row r; lanes >= rows are computed and dropped): the
    /// neuron formula in int32 lanes, the counts by `Kernels.neuronCounts`.
    @inline(__always) mutating func putX86(_ j: Int, _ acc: SIMD4<Int32>) {
        let e = j &* outputStep, i = j &* paramStep
        var theta = SIMD4<Int32>(repeating: thresholds[i]), bias = SIMD4<Int32>(repeating: biases[i])
        if paramRowStep != 0 {  // a neuron per row: lanes past `rows` repeat row 0's (no read past the rows)
            let i1 = rows > 1 ? i &+ paramRowStep : i, i2 = rows > 2 ? i &+ 2 &* paramRowStep : i
            let i3 = rows > 3 ? i &+ 3 &* paramRowStep : i
            theta = SIMD4(thresholds[i], thresholds[i1], thresholds[i2], thresholds[i3])
            bias = SIMD4(biases[i], biases[i1], biases[i2], biases[i3])
        }
        let a = (acc &<< SIMD4(repeating: shift & 31)) &+ bias &+ (theta &>> 1)
        let c = Kernels.neuronCounts(a, threshold: theta, levels: levels)
        let v = output == .prefixTrains ? (SIMD4<Int32>(repeating: 1) &<< c) &- 1 : c
        out[e] = UInt8(truncatingIfNeeded: v[0])
        var total = c[0]
        if rows > 1 { out[e &+ rowStep] = UInt8(truncatingIfNeeded: v[1]); total &+= c[1] }
        if rows > 2 { out[e &+ 2 &* rowStep] = UInt8(truncatingIfNeeded: v[2]); total &+= c[2] }
        if rows > 3 { out[e &+ 3 &* rowStep] = UInt8(truncatingIfNeeded: v[3]); total &+= c[3] }
        spikes &+= UInt32(bitPattern: total)
    }
}
#endif
