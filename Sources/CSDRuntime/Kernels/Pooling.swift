/// What a max-pool reads and writes.
public enum PoolValues {
    /// uint8 counts (fused): the maximum count.
    case counts
    /// uint8 prefix trains (the spiking count path): the train of the largest count, which is
    /// the largest train.
    case prefixTrains
    /// Spike trains (the event path, uint8 or uint16): the output spikes at t when the largest
    /// running count rises (`poolSpikes`).
    case spikeTrains
}

extension Kernels {
    /// Spiking max-pool of one window (docs/SEMANTICS.md section 3, MAXPOOL): rows y0 ..< y1,
    /// columns x0 ..< x1 (at most 3 x 3) of a channel's trains (row stride w). With C_i(t) the
    /// running counts, the output spikes at t when max_i C_i(t) > max_i C_i(t - 1). Returns the
    /// output train.
    @inline(__always)
    static func poolSpikes(_ trains: UnsafeRawPointer, width: TrainWidth, w: Int, y0: Int, y1: Int, x0: Int, x1: Int,
                           steps: Int) -> UInt32 {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 18) { buffer in
            let x = buffer.baseAddress!, c = x + 9
            var n = 0, any: UInt32 = 0, y = y0
            while y < y1 {
                var xx = x0
                while xx < x1 {
                    x[n] = train(trains, width, y &* w &+ xx)
                    c[n] = 0
                    any |= x[n]
                    n &+= 1
                    xx &+= 1
                }
                y &+= 1
            }
            var out: UInt32 = 0, previous: UInt32 = 0, t = 0
            while t < steps && (any &>> UInt32(truncatingIfNeeded: t)) != 0 {
                var m: UInt32 = 0, i = 0
                while i < n {
                    c[i] &+= (x[i] &>> UInt32(truncatingIfNeeded: t)) & 1
                    m = c[i] > m ? c[i] : m
                    i &+= 1
                }
                if m > previous { out |= 1 &<< UInt32(truncatingIfNeeded: t) }
                previous = m
                t &+= 1
            }
            return out
        }
    }

    /// Max-pool (docs/SEMANTICS.md section 3, MAXPOOL) of a map [c][h][w] into [c][oh][ow]: pool 2
    /// (2x2, stride 2) or 3 (3x3, stride 2, padding 1), windows clipped to the map. Channel ch's map
    /// starts at element ch * inPlane of the input and its pooled map at ch * outPlane of the output
    /// (h w and oh ow for whole maps; a band of rows has its own, docs/FORMAT.md "Bands"). Returns the
    /// spikes (the sum of the counts, or of the trains' bits).
    @inline(__always)
    public static func maxPool(_ input: UnsafeRawPointer, _ values: PoolValues, width: TrainWidth, c: Int, h: Int, w: Int,
                               pool: Int, _ output: UnsafeMutableRawPointer, oh: Int, ow: Int, steps: Int,
                               inPlane: Int, outPlane: Int) -> UInt32 {
        var spikes: UInt32 = 0
        let countsOut = values == .counts
        #if arch(x86_64)
        if useX86Twins && pool == 2 && values != .spikeTrains && ow >= 8 {
            return maxPool2X86(input.assumingMemoryBound(to: UInt8.self), counts: countsOut, c: c, h: h, w: w,
                               output.assumingMemoryBound(to: UInt8.self), oh: oh, ow: ow, inPlane: inPlane, outPlane: outPlane)
        }
        #endif
        if pool == 2 && values != .spikeTrains {  // uint8, every window the whole 2x2 block
            var inp = input.assumingMemoryBound(to: UInt8.self)
            var ch = 0
            while ch < c {
                var out = output.assumingMemoryBound(to: UInt8.self) + ch &* outPlane, oy = 0
                while oy < oh {
                    var p = inp + 2 &* oy &* w
                    let end = p + 2 &* ow
                    while p != end {
                        let a = p[0] > p[1] ? p[0] : p[1], b = p[w] > p[w &+ 1] ? p[w] : p[w &+ 1]
                        let m = a > b ? a : b
                        out.pointee = m
                        out += 1
                        spikes &+= countsOut ? UInt32(m) : Kernels.spikes(UInt32(m))
                        p += 2
                    }
                    oy &+= 1
                }
                inp += inPlane
                ch &+= 1
            }
            return spikes
        }
        let pad = pool == 3 ? 1 : 0, eb = values == .spikeTrains ? width.bytes : 1
        var inp = input, ch = 0
        while ch < c {
            var o = ch &* outPlane, oy = 0
            while oy < oh {
                let top = oy &* 2 &- pad, y0 = top < 0 ? 0 : top, y1 = top &+ pool < h ? top &+ pool : h
                var ox = 0
                while ox < ow {
                    let left = ox &* 2 &- pad, x0 = left < 0 ? 0 : left, x1 = left &+ pool < w ? left &+ pool : w
                    var m: UInt32 = 0
                    if values == .spikeTrains {
                        m = poolSpikes(inp, width: width, w: w, y0: y0, y1: y1, x0: x0, x1: x1, steps: steps)
                        setTrain(output, width, o, m)
                    } else {
                        var y = y0
                        while y < y1 {
                            var x = x0
                            while x < x1 {
                                let v = UInt32(inp.load(fromByteOffset: y &* w &+ x, as: UInt8.self))
                                m = v > m ? v : m
                                x &+= 1
                            }
                            y &+= 1
                        }
                        output.storeBytes(of: UInt8(truncatingIfNeeded: m), toByteOffset: o, as: UInt8.self)
                    }
                    spikes &+= countsOut ? m : Kernels.spikes(m)
                    o &+= 1
                    ox &+= 1
                }
                oy &+= 1
            }
            inp += inPlane &* eb
            ch &+= 1
        }
        return spikes
    }
}
