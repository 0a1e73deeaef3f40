/// The count path's conversions (spiking, D >= T; docs/SEMANTICS.md "Prefix trains"): every train
/// is a prefix train, spikes at steps 0 ..< c, so train = (1 << c) - 1 and a neuron's integrated
/// input is the fused accumulation of the counts c. The runtime turns an op's input trains into
/// counts in place, runs the fused kernels, and turns counts back into trains.

/// The prefix train of each count c <= 8 (uint8 trains).
@usableFromInline let prefixTrain8: InlineArray<16, UInt8> = [0, 1, 3, 7, 15, 31, 63, 127, 255, 0, 0, 0, 0, 0, 0, 0]

extension Kernels {
    /// uint8 trains -> their spike counts, in place, four at a time (bit counts within each byte).
    /// Returns the sum of the counts. (x86-64 hosts: `trainsToCountsX86`, 32 at a time.)
    @inline(never)
    public static func trainsToCounts(_ p: UnsafeMutablePointer<UInt8>, count n: Int) -> UInt32 {
        #if arch(x86_64)
        if useX86Twins { return trainsToCountsX86(p, count: n) }
        #endif
        return trainsToCountsPortable(p, count: n)
    }

    /// The portable loop of `trainsToCounts` (what the MCU builds run).
    @inline(__always)
    static func trainsToCountsPortable(_ p: UnsafeMutablePointer<UInt8>, count n: Int) -> UInt32 {
        var sum: UInt32 = 0, i = 0
        let raw = UnsafeMutableRawPointer(p)
        while i &+ 4 <= n {
            var x = raw.loadUnaligned(fromByteOffset: i, as: UInt32.self)
            x &-= (x &>> 1) & 0x5555_5555
            x = (x & 0x3333_3333) &+ ((x &>> 2) & 0x3333_3333)
            x = (x &+ (x &>> 4)) & 0x0F0F_0F0F
            raw.storeBytes(of: x, toByteOffset: i, as: UInt32.self)
            sum &+= (x &* 0x0101_0101) &>> 24
            i &+= 4
        }
        while i < n {
            let c = spikes(UInt32(p[i]))
            p[i] = UInt8(truncatingIfNeeded: c)
            sum &+= c
            i &+= 1
        }
        return sum
    }

    /// Counts (<= 8) -> uint8 prefix trains, in place, four at a time. (x86-64 hosts:
    /// `countsToTrainsX86`, 32 at a time.)
    @inline(never)
    public static func countsToTrains(_ p: UnsafeMutablePointer<UInt8>, count n: Int) {
        #if arch(x86_64)
        if useX86Twins { return countsToTrainsX86(p, count: n) }
        #endif
        countsToTrainsPortable(p, count: n)
    }

    /// The portable loop of `countsToTrains` (what the MCU builds run).
    @inline(__always)
    static func countsToTrainsPortable(_ p: UnsafeMutablePointer<UInt8>, count n: Int) {
        var i = 0
        let raw = UnsafeMutableRawPointer(p)
        while i &+ 4 <= n {
            let x = raw.loadUnaligned(fromByteOffset: i, as: UInt32.self)
            let t = UInt32(prefixTrain8[Int(x & 15)]) | UInt32(prefixTrain8[Int((x &>> 8) & 15)]) &<< 8
                | UInt32(prefixTrain8[Int((x &>> 16) & 15)]) &<< 16 | UInt32(prefixTrain8[Int((x &>> 24) & 15)]) &<< 24
            raw.storeBytes(of: t, toByteOffset: i, as: UInt32.self)
            i &+= 4
        }
        while i < n {
            p[i] = prefixTrain8[Int(p[i] & 15)]
            i &+= 1
        }
    }

    /// Counts (<= 16) written as uint8 at p[0 ..< n] -> uint16 prefix trains at the same address,
    /// from the last (each uint16 covers bytes at or after its count's).
    @inline(__always)
    public static func countsToTrains16(_ p: UnsafeMutableRawPointer, count n: Int) {
        var i = n &- 1
        while i >= 0 {
            let c = UInt32(p.load(fromByteOffset: i, as: UInt8.self))
            p.storeBytes(of: UInt16(truncatingIfNeeded: (1 &<< c) &- 1), toByteOffset: i &* 2, as: UInt16.self)
            i &-= 1
        }
    }

    /// The synaptic operations of a conv from counts, wrapping like the event path: every input
    /// spike adds its column once per 3x3 window (zero padding) that holds it, so the sum over a
    /// map [c][h][w] of count x windows (times Cout, by the caller).
    @inline(__always)
    public static func windowSum(_ p: UnsafePointer<UInt8>, c: Int, h: Int, w: Int) -> UInt32 {
        var total: UInt32 = 0, q = p, ch = 0
        while ch < c {
            var y = 0
            while y < h {
                let ny: UInt32 = 1 &+ (y > 0 ? 1 : 0) &+ (y < h &- 1 ? 1 : 0)
                var row: UInt32 = 0, x = 0
                while x < w {
                    row &+= UInt32(q.pointee) &* (1 &+ (x > 0 ? 1 : 0) &+ (x < w &- 1 ? 1 : 0))
                    q += 1
                    x &+= 1
                }
                total &+= ny &* row
                y &+= 1
            }
            ch &+= 1
        }
        return total
    }
}
