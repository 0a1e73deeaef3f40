import CSDMachine

/// x86-64 hosts: the 2x2 max-pool of uint8 values (counts, or prefix trains on the spiking count
/// path: the largest train is the train of the largest count) eight outputs at a time: sixteen
/// bytes of each of the window's two rows, their maximum, then the larger byte of each pair
/// (`csd_pool2_u8x16`). A row's last eight outputs, when the output width is not a multiple of 8,
/// overlap the ones before (every load and store stays inside its row) and only their new lanes
/// count; outputs narrower than 8 keep the portable loop. Same outputs and spikes as `maxPool`.
#if arch(x86_64)
extension Kernels {
    /// `maxPool` with pool 2 of uint8 values, `ow` >= 8 (the caller checks). Returns the spikes: the
    /// sum of the output counts, or of the prefix trains' bits.
    static func maxPool2X86(_ input: UnsafePointer<UInt8>, counts: Bool, c: Int, h: Int, w: Int,
                            _ output: UnsafeMutablePointer<UInt8>, oh: Int, ow: Int, inPlane: Int, outPlane: Int) -> UInt32 {
        let chunks = (ow &+ 7) &>> 3, lastStart = ow &- 8, overlap = 8 &* (chunks &- 1) &- lastStart
        // the last chunk's lanes below `overlap` were the previous chunk's: their bytes masked to 0
        let fresh = unsafeBitCast(UInt64.max &<< UInt64(truncatingIfNeeded: 8 &* overlap), to: SIMD8<UInt8>.self)
        var spikes: UInt32 = 0, ch = 0
        while ch < c {
            var out = output + ch &* outPlane, oy = 0
            while oy < oh {
                let row: Int = ch &* inPlane &+ 2 &* oy &* w
                let top = UnsafeRawPointer(input + row)
                var q = 0
                while q < chunks {
                    let x0 = chunkStart(q, w: ow)
                    let m = csd_pool2_u8x16(top.loadUnaligned(fromByteOffset: 2 &* x0, as: SIMD16<UInt8>.self),
                                            top.loadUnaligned(fromByteOffset: w &+ 2 &* x0, as: SIMD16<UInt8>.self))
                    UnsafeMutableRawPointer(out + x0).storeBytes(of: m, as: SIMD8<UInt8>.self)
                    let new = q == chunks &- 1 ? m & fresh : m
                    spikes &+= counts ? csd_sum_u8x8(new) : csd_popcount_u8x8(new)
                    q &+= 1
                }
                out += ow
                oy &+= 1
            }
            ch &+= 1
        }
        return spikes
    }
}
#endif
