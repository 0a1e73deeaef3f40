import CSDMachine

/// The x86-64 twin of `pairSynapticOps` (Attention.swift; its groups are adjacent bytes on both sides:
/// the scores' channels of q and k, the values' keys of a block of scores rows and of v's head rows):
/// eight groups per vector, each side's sums and spiking entries in
/// uint32 lanes, the pairs' additions wrapping like the portable loop's; groups past the last multiple
/// of 8 take the portable formula. Same result.
#if arch(x86_64)
extension Kernels {
    public static func pairSynapticOpsX86(_ x: UnsafePointer<UInt8>, _ y: UnsafePointer<UInt8>, groups: Int, sx: Int, nx: Int,
                                          sy: Int, ny: Int) -> UInt32 {
        var lanes = SIMD8<UInt32>(repeating: 0), j = 0
        while j &+ 8 <= groups {
            let a = countStats8(x + j, count: nx, stride: sx), b = countStats8(y + j, count: ny, stride: sy)
            lanes &+= (a.sum &- a.spiking) &* b.spiking &+ a.spiking &* b.sum
            j &+= 8
        }
        // the last groups % 8
        return lanes.wrappedSum() &+ pairSynapticOpsPortable(x + j, y + j, groups: groups &- j, sx: sx, nx: nx, sy: sy, ny: ny)
    }

    /// Per lane l < 8: the sum and the number of nonzero entries of p[l + i * stride], i < count.
    @inline(__always) static func countStats8(_ p: UnsafePointer<UInt8>, count: Int, stride: Int)
        -> (sum: SIMD8<UInt32>, spiking: SIMD8<UInt32>) {
        var sum = SIMD8<UInt32>(repeating: 0), spiking = sum, q = UnsafeRawPointer(p), i = 0
        let one = SIMD8<UInt32>(repeating: 1)
        while i < count {
            let v = SIMD8<UInt32>(truncatingIfNeeded: q.loadUnaligned(as: SIMD8<UInt8>.self))
            sum &+= v
            spiking &+= pointwiseMin(v, one)  // 1 where nonzero
            q += stride
            i &+= 1
        }
        return (sum, spiking)
    }
}
#endif
