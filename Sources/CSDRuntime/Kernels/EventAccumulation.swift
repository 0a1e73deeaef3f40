import CSDMachine

/// Which spike trains feed an event-driven accumulation.
public enum InputTrains {
    /// Any trains: every spike adds its weight column at its step.
    case any
    /// Prefix trains only (spikes at steps 0 ..< c; at D >= T every train is one, docs/SEMANTICS.md
    /// "Prefix trains"): an input adds its column once, at its last spike, and `suffixSteps` (or
    /// `streamChannels(..., prefix: true)`) then yields the step currents.
    case prefix
}

/// The weights of a conv or linear: int8, or int16 for stream writers.
public enum WeightWidth {
    case int8, int16
    @inlinable public var bytes: Int { self == .int16 ? 2 : 1 }
}

extension Kernels {
    /// The active inputs of a token: entries (k << 16) | train for the inputs k < count of `trains`
    /// (uint8 or uint16) whose train is not 0. Returns the number of entries; `list` holds `count`.
    @inline(never)
    public static func listRow(_ trains: UnsafeRawPointer, width: TrainWidth, count: Int,
                               _ list: UnsafeMutablePointer<UInt32>) -> Int {
        var n = 0, k = 0
        if width == .bits8 {
            while k &+ 4 <= count {  // four silent inputs in one load
                if trains.loadUnaligned(fromByteOffset: k, as: UInt32.self) != 0 {
                    var u = k
                    while u < k &+ 4 {
                        let x = UInt32(trains.load(fromByteOffset: u, as: UInt8.self))
                        if x != 0 {
                            list[n] = UInt32(truncatingIfNeeded: u) &<< 16 | x
                            n &+= 1
                        }
                        u &+= 1
                    }
                }
                k &+= 4
            }
        }
        while k < count {
            let x = train(trains, width, k)
            if x != 0 {
                list[n] = UInt32(truncatingIfNeeded: k) &<< 16 | x
                n &+= 1
            }
            k &+= 1
        }
        return n
    }

    /// The same for the 3x3 receptive field of position pos = y * w + x of trains [cin][h][w] (zero
    /// outside the map): input k = i * 9 + dy * 3 + dx.
    @inline(__always)
    public static func listPatch(_ trains: UnsafeRawPointer, width: TrainWidth, cin: Int, h: Int, w: Int, pos: Int,
                                 _ list: UnsafeMutablePointer<UInt32>) -> Int {
        let y = Int(csd_quot(Int32(truncatingIfNeeded: pos), Int32(truncatingIfNeeded: w))), x = pos &- y &* w
        let y0 = y > 0 ? 0 : 1, y1 = y < h &- 1 ? 3 : 2, x0 = x > 0 ? 0 : 1, x1 = x < w &- 1 ? 3 : 2
        let plane = h &* w
        var n = 0, base = (y &- 1) &* w &+ (x &- 1), i = 0, k = 0
        while i < cin {
            var dy = y0
            while dy < y1 {
                var dx = x0
                while dx < x1 {
                    let v = train(trains, width, base &+ dy &* w &+ dx)
                    if v != 0 {
                        list[n] = UInt32(truncatingIfNeeded: k &+ dy &* 3 &+ dx) &<< 16 | v
                        n &+= 1
                    }
                    dx &+= 1
                }
                dy &+= 1
            }
            base &+= plane
            k &+= 9
            i &+= 1
        }
        return n
    }

    /// Weight at p: int8, or int16.
    @inline(__always) static func weight(_ p: UnsafeRawPointer, _ width: WeightWidth) -> UInt32 {
        width == .int16 ? UInt32(bitPattern: Int32(p.load(as: Int16.self))) : UInt32(bitPattern: Int32(p.load(as: Int8.self)))
    }

    /// Event-driven accumulation for conv / linear: every entry (k, train) of the active list adds
    /// column k of the weights (weights[j * wstride + k], j < outputs) to the currents of the steps
    /// it spikes at, cur [T][outputs] int32 (cur[t * outputs + j]), spike by spike: the step found
    /// once per spike, the whole column added into that step's row, four channels per pass. With
    /// `.prefix` trains an entry adds its column at its last spike only. Returns the synaptic
    /// operations (spikes x outputs), wrapping. Cortex-M4: the four channels of a pass in assembly
    /// (csd_column4_*_m4: LDM / four weight loads and ADDs / STM, 3.25 instructions per channel).
    @inline(__always)
    public static func eventSynapticOps(_ list: UnsafePointer<UInt32>, count: Int, weights: UnsafeRawPointer,
                                        width: WeightWidth, wstride: Int, outputs: Int, _ cur: UnsafeMutablePointer<Int32>,
                                        trains: InputTrains) -> UInt32 {
        useM4Twins
            ? eventSynapticOpsM4(list, count: count, weights: weights, width: width, wstride: wstride, outputs: outputs, cur, trains: trains)
            : eventSynapticOpsPortable(list, count: count, weights: weights, width: width, wstride: wstride, outputs: outputs, cur,
                                       trains: trains)
    }

    /// The portable loop (every core but the Cortex-M4 build, and the M4 twin's reference in its test).
    @inline(__always)
    public static func eventSynapticOpsPortable(_ list: UnsafePointer<UInt32>, count: Int, weights: UnsafeRawPointer,
                                                width: WeightWidth, wstride: Int, outputs: Int,
                                                _ cur: UnsafeMutablePointer<Int32>, trains: InputTrains) -> UInt32 {
        eventAccumulate(list, count: count, weights: weights, width: width, wstride: wstride, outputs: outputs, cur,
                        trains: trains, m4: false)
    }

    /// The same loop with the Cortex-M4 assembly steps.
    @inline(__always)
    public static func eventSynapticOpsM4(_ list: UnsafePointer<UInt32>, count: Int, weights: UnsafeRawPointer,
                                          width: WeightWidth, wstride: Int, outputs: Int,
                                          _ cur: UnsafeMutablePointer<Int32>, trains: InputTrains) -> UInt32 {
        eventAccumulate(list, count: count, weights: weights, width: width, wstride: wstride, outputs: outputs, cur,
                        trains: trains, m4: true)
    }

    @inline(__always)
    static func eventAccumulate(_ list: UnsafePointer<UInt32>, count: Int, weights: UnsafeRawPointer, width: WeightWidth,
                                wstride: Int, outputs: Int, _ cur: UnsafeMutablePointer<Int32>, trains: InputTrains,
                                m4: Bool) -> UInt32 {
        var spikes: UInt32 = 0
        let eb = width.bytes, ws = wstride &* eb, quad = outputs & ~3
        var l = list
        let end = list + count
        while l != end {
            let v = l.pointee
            var x = v & 0xFFFF
            if trains == .prefix {  // x != 0: its last spike only
                let z = x.leadingZeroBitCount
                spikes &+= UInt32(truncatingIfNeeded: 32 &- z)
                x = 0x8000_0000 &>> UInt32(truncatingIfNeeded: z)
            } else {
                spikes &+= Kernels.spikes(x)
            }
            let col = (weights + Int(v &>> 16) &* eb).assumingMemoryBound(to: UInt8.self)
            while x != 0 {  // spike by spike: the whole column into the currents of the spike's step
                let row = cur + x.trailingZeroBitCount &* outputs
                var p = col, j = 0
                if m4 && quad != 0 {  // four channels per LDM / STM
                    p = width == .int16 ? csd_column4_s16_m4(row, row + quad, col, Int32(truncatingIfNeeded: ws))
                                        : csd_column4_s8_m4(row, row + quad, col, Int32(truncatingIfNeeded: ws))
                    j = quad
                }
                while j < quad {
                    row[j] = Int32(bitPattern: UInt32(bitPattern: row[j]) &+ weight(p, width))
                    row[j &+ 1] = Int32(bitPattern: UInt32(bitPattern: row[j &+ 1]) &+ weight(p + ws, width))
                    row[j &+ 2] = Int32(bitPattern: UInt32(bitPattern: row[j &+ 2]) &+ weight(p + 2 &* ws, width))
                    row[j &+ 3] = Int32(bitPattern: UInt32(bitPattern: row[j &+ 3]) &+ weight(p + 3 &* ws, width))
                    p += 4 &* ws
                    j &+= 4
                }
                while j < outputs {
                    row[j] = Int32(bitPattern: UInt32(bitPattern: row[j]) &+ weight(p, width))
                    p += ws
                    j &+= 1
                }
                x &= x &- 1
            }
            l += 1
        }
        return spikes &* UInt32(truncatingIfNeeded: outputs)
    }

    /// After `eventSynapticOps(..., trains: .prefix)`: slot s holds the columns of the inputs whose
    /// last spike is at step s, and an input spiking at steps 0 ... s adds to every step up to s, so
    /// the step currents are the suffix sums cur[t] += cur[t + 1] (t from steps - 2 down to 0).
    @inline(__always)
    public static func suffixSteps(_ cur: UnsafeMutablePointer<Int32>, steps: Int, outputs: Int) {
        var i = (steps &- 1) &* outputs &- 1
        while i >= 0 {
            cur[i] = Int32(bitPattern: UInt32(bitPattern: cur[i]) &+ UInt32(bitPattern: cur[i &+ outputs]))
            i &-= 1
        }
    }

    /// The stream writer's delivery for one position or token (docs/SEMANTICS.md, "Stream sinks"):
    /// channel base + j of x [n][d][steps] gets at step t (set, or added)
    /// floor(P[t] / 2^shift) - floor(P[t-1] / 2^shift), the running sum P[t] = bias[j] + I[0] + ... + I[t]
    /// in wrapping int32 (floor(P[-1] / 2^shift) = 0), the low 16 bits stored; the step currents
    /// I[t] = cur[t * outputs + j], or with `prefix` (the slots of `eventSynapticOps(..., trains: .prefix)`)
    /// their suffix sums (cur is scratch).
    @inline(__always)
    public static func streamChannels(_ cur: UnsafeMutablePointer<Int32>, outputs: Int, steps: Int,
                                      _ stream: UnsafeMutablePointer<Int16>, base: Int, biases bias: UnsafePointer<Int32>,
                                      write: StreamWrite, prefix: Bool, shift: Int32) {
        if prefix { suffixSteps(cur, steps: steps, outputs: outputs) }
        let set = write == .set
        var x = stream + base &* steps, j = 0
        while j &+ 2 <= outputs {  // two channels per pass
            var c = cur + j, p0 = UInt32(bitPattern: bias[j]), p1 = UInt32(bitPattern: bias[j &+ 1])
            var last0: Int32 = 0, last1: Int32 = 0, t = 0
            while t < steps {
                p0 &+= UInt32(bitPattern: c[0])
                p1 &+= UInt32(bitPattern: c[1])
                let v0 = Int32(bitPattern: p0) &>> shift, v1 = Int32(bitPattern: p1) &>> shift
                let s0 = v0 &- last0, s1 = v1 &- last1
                x[t] = Int16(truncatingIfNeeded: set ? s0 : Int32(x[t]) &+ s0)
                x[t &+ steps] = Int16(truncatingIfNeeded: set ? s1 : Int32(x[t &+ steps]) &+ s1)
                last0 = v0
                last1 = v1
                c += outputs
                t &+= 1
            }
            x += 2 &* steps
            j &+= 2
        }
        if j < outputs {  // an odd last channel
            var c = cur + j, p = UInt32(bitPattern: bias[j]), last: Int32 = 0, t = 0
            while t < steps {
                p &+= UInt32(bitPattern: c.pointee)
                let v = Int32(bitPattern: p) &>> shift, step = v &- last
                x[t] = Int16(truncatingIfNeeded: set ? step : Int32(x[t]) &+ step)
                last = v
                c += outputs
                t &+= 1
            }
        }
    }
}
