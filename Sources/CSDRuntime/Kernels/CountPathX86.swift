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
