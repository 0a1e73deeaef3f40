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

    /// `pairSynapticOps` is linear in the x side's sums and spiking counts per group (their sum over
    /// blocks of x rows pairs with the same y side), so the attention values' operations need v's
    /// side once per head, not once per block of queries: `addCountStatsX86` adds a block's x stats
    /// per group into `sums` and `spiking` (groups uint32 each), and `pairSynapticOpsFromStatsX86`
    /// pairs them with y's. Their result over all blocks equals the sum of `pairSynapticOps` per
    /// block (wrapping alike).
    static func addCountStatsX86(_ x: UnsafePointer<UInt8>, groups: Int, sx: Int, nx: Int, sums: UnsafeMutablePointer<UInt32>,
                                 spiking: UnsafeMutablePointer<UInt32>) {
        var j = 0
        while j &+ 8 <= groups {
            let a = countStats8(x + j, count: nx, stride: sx)
            let s = UnsafeMutableRawPointer(sums + j), p = UnsafeMutableRawPointer(spiking + j)
            s.storeBytes(of: s.loadUnaligned(as: SIMD8<UInt32>.self) &+ a.sum, as: SIMD8<UInt32>.self)
            p.storeBytes(of: p.loadUnaligned(as: SIMD8<UInt32>.self) &+ a.spiking, as: SIMD8<UInt32>.self)
            j &+= 8
        }
        while j < groups {
            let a = countStats(x + j, count: nx, stride: sx)
            sums[j] &+= a.sum
            spiking[j] &+= a.spiking
            j &+= 1
        }
    }

    /// The synaptic operations of x sides summed by `addCountStatsX86` against y[j + i * sy], i < ny.
    static func pairSynapticOpsFromStatsX86(_ sums: UnsafePointer<UInt32>, _ spiking: UnsafePointer<UInt32>,
                                            _ y: UnsafePointer<UInt8>, groups: Int, sy: Int, ny: Int) -> UInt32 {
        var lanes = SIMD8<UInt32>(repeating: 0), total: UInt32 = 0, j = 0
        while j &+ 8 <= groups {
            let aSum = UnsafeRawPointer(sums + j).loadUnaligned(as: SIMD8<UInt32>.self)
            let aSpiking = UnsafeRawPointer(spiking + j).loadUnaligned(as: SIMD8<UInt32>.self)
            let b = countStats8(y + j, count: ny, stride: sy)
            lanes &+= (aSum &- aSpiking) &* b.spiking &+ aSpiking &* b.sum
            j &+= 8
        }
        while j < groups {
            let b = countStats(y + j, count: ny, stride: sy)
            total &+= (sums[j] &- spiking[j]) &* b.spiking &+ spiking[j] &* b.sum
            j &+= 1
        }
        return lanes.wrappedSum() &+ total
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
