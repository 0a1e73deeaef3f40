import CSDMachine

/// x86-64 hosts: the count path's conversions (CountPath.swift) 32 values at a time: uint8 trains to
/// their spike counts (a byte popcount, `csd_popcount_u8x32`, and a byte sum, `csd_sum_u8x32`) and
/// counts (<= 8) to uint8 prefix trains (a table, `csd_prefix_u8x32`); the last n % 32 values take
/// the portable loops. Same bytes and sums as `trainsToCounts` and `countsToTrains`.
#if arch(x86_64)
extension Kernels {
    /// `trainsToCounts` on x86-64.
    static func trainsToCountsX86(_ p: UnsafeMutablePointer<UInt8>, count n: Int) -> UInt32 {
        var sum: UInt32 = 0, i = 0
        let raw = UnsafeMutableRawPointer(p)
        while i &+ 32 <= n {
            let c = csd_popcount_u8x32(raw.loadUnaligned(fromByteOffset: i, as: SIMD32<UInt8>.self))
            raw.storeBytes(of: c, toByteOffset: i, as: SIMD32<UInt8>.self)
            sum &+= csd_sum_u8x32(c)
            i &+= 32
        }
        return sum &+ trainsToCountsPortable(p + i, count: n &- i)
    }

    /// `countsToTrains` on x86-64.
    static func countsToTrainsX86(_ p: UnsafeMutablePointer<UInt8>, count n: Int) {
        var i = 0
        let raw = UnsafeMutableRawPointer(p)
        while i &+ 32 <= n {
            raw.storeBytes(of: csd_prefix_u8x32(raw.loadUnaligned(fromByteOffset: i, as: SIMD32<UInt8>.self)),
                           toByteOffset: i, as: SIMD32<UInt8>.self)
            i &+= 32
        }
        countsToTrainsPortable(p + i, count: n &- i)
    }
}
#endif

#if arch(x86_64)
extension Kernels {
    /// Whether `windowSumX86` takes a map of c x h x w values in a buffer of `bytes`.
    @inline(__always) @usableFromInline static func windowSumFitsX86(c: Int, h: Int, w: Int, bytes: Int) -> Bool {
        useX86Twins && c &* h &* w <= bytes
    }

    /// `windowSum` on x86-64: each value's number of 3x3 windows, ny(y) nx(x) <= 9, laid out once for a
    /// plane in `buffer` and copied for every channel, then one dot product of the map's bytes with
    /// them, 32 at a time (`csd_dot4_u8i8`: a pair of products, at most 2 * 255 * 9, fits int16),
    /// the last c h w % 32 one by one. Same wrapping sum. `buffer` holds c h w bytes
    /// (`windowSumFitsX86`).
    @usableFromInline static func windowSumX86(_ p: UnsafePointer<UInt8>, c: Int, h: Int, w: Int, buffer: UnsafeMutableRawPointer) -> UInt32 {
        let plane = h &* w, n = c &* plane, m = buffer.assumingMemoryBound(to: Int8.self)
        var y = 0
        while y < h {
            let ny = 1 &+ (y > 0 ? 1 : 0) &+ (y < h &- 1 ? 1 : 0)
            var x = 0
            while x < w {
                m[y &* w &+ x] = Int8(truncatingIfNeeded: ny &* (1 &+ (x > 0 ? 1 : 0) &+ (x < w &- 1 ? 1 : 0)))
                x &+= 1
            }
            y &+= 1
        }
        var ch = 1
        while ch < c {
            (buffer + ch &* plane).copyMemory(from: buffer, byteCount: plane)
            ch &+= 1
        }
        var lanes = SIMD8<Int32>(repeating: 0), i = 0
        let raw = UnsafeRawPointer(p)
        while i &+ 32 <= n {
            lanes = csd_dot4acc_u8i8(lanes, raw.loadUnaligned(fromByteOffset: i, as: SIMD32<UInt8>.self),
                                   UnsafeRawPointer(buffer).loadUnaligned(fromByteOffset: i, as: SIMD32<Int8>.self))
            i &+= 32
        }
        var total = UInt32(bitPattern: csd_sum_i32x8(lanes))
        while i < n {
            total &+= UInt32(p[i]) &* UInt32(truncatingIfNeeded: m[i])
            i &+= 1
        }
        return total
    }
}
#endif
