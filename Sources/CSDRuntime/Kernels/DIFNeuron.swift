import CSDFormat
import CSDMachine

/// What a neuron kernel writes for a count c: the count itself (fused), or its prefix train
/// (1 << c) - 1, spikes at steps 0 ..< c (the spiking count path, docs/SEMANTICS.md "Prefix trains").
public enum NeuronOutput {
    case counts, prefixTrains
}

extension Kernels {
    /// The fused neuron formula (docs/SEMANTICS.md section 3.1) after the accumulation:
    /// clip(floor(a / theta), 0, levels) with a = (acc << k) + beta + floor(theta / 2), theta >= 1
    /// (validated), levels <= 16. Truncating division equals floor wherever the clip keeps the
    /// quotient (a >= 0), and no quotient overflows for theta >= 1; `csd_quot` is one SDIV.
    @inline(__always) public static func neuronCount(_ a: Int32, threshold theta: Int32, levels: Int32) -> UInt32 {
        let q = csd_quot(a, theta)
        let c = useM4Twins ? csd_usat8(q) : (q < 0 ? 0 : UInt32(bitPattern: q))  // the clip at 0
        let l = UInt32(bitPattern: levels)
        return c > l ? l : c
    }

    /// The DIF neuron (docs/SEMANTICS.md section 3.2, delay D): with the currents
    /// I[t] = cur[t * stride] << shift (+ bias at t = 0), t < steps, the membrane starts at
    /// theta / 2, integrates I[tau] for tau < steps and fires from tau = delay on (at most `levels`
    /// spikes, soft reset by theta). Returns the train (bit u: a spike at output step u = tau - D).
    /// Wrapping int32 arithmetic. At D >= T every input comes first, so the train is the prefix train
    /// of min(v / theta, levels) (levels <= steps; v only falls by theta per spike without input),
    /// computed with one division; the shift distributes over the wrapping sum.
    @inline(never)
    public static func difTrain(_ cur: UnsafePointer<Int32>, stride: Int, steps: Int, delay: Int, shift: Int32,
                                bias: Int32, threshold theta: Int32, levels: Int32) -> UInt32 {
        difTrainInline(cur, stride: stride, steps: steps, delay: delay, shift: shift, bias: bias, threshold: theta,
                       levels: levels)
    }

    /// `difTrain` in the caller's loop (the attention pair's neurons on the event path, where the call
    /// cost a fifth of each neuron).
    @inline(__always)
    static func difTrainInline(_ cur: UnsafePointer<Int32>, stride: Int, steps: Int, delay: Int, shift: Int32,
                               bias: Int32, threshold theta: Int32, levels: Int32) -> UInt32 {
        let sh = UInt32(truncatingIfNeeded: shift) & 31
        var v = UInt32(bitPattern: theta &>> 1) &+ UInt32(bitPattern: bias)
        var c = cur
        if delay >= steps {
            var sum: UInt32 = 0
            let end = cur + steps &* stride
            if stride == 1 {  // a stream token: two steps per pass
                while c + 1 < end {
                    sum &+= UInt32(bitPattern: c[0]) &+ UInt32(bitPattern: c[1])
                    c += 2
                }
            }
            while c != end {
                sum &+= UInt32(bitPattern: c.pointee)
                c += stride
            }
            v &+= sum &<< sh
            let q = Int32(bitPattern: v) < theta ? 0 : csd_quot(Int32(bitPattern: v), theta)
            let n = UInt32(bitPattern: q >= levels ? levels : q)
            return (1 &<< n) &- 1
        }
        // pointers and the output bit count the steps: tau < D, then D <= tau < T (bit u for tau = D + u)
        let firing = cur + delay &* stride, end = cur + steps &* stride
        while c < firing {
            v &+= UInt32(bitPattern: c.pointee) &<< sh
            c += stride
        }
        var left = levels, train: UInt32 = 0, bit: UInt32 = 1  // left: spikes it may still emit
        if left <= 0 { return 0 }
        while c < end {  // input and firing
            v &+= UInt32(bitPattern: c.pointee) &<< sh
            c += stride
            if Int32(bitPattern: v) >= theta {
                train |= bit
                v &-= UInt32(bitPattern: theta)
                left &-= 1
                if left == 0 { return train }
            }
            bit &<<= 1
        }
        // the last D steps (u < T) have no input: v only falls, so the neuron fires on while it can and never again
        let last = UInt32(1) &<< (UInt32(truncatingIfNeeded: steps) & 31)
        while bit < last && Int32(bitPattern: v) >= theta {
            train |= bit
            v &-= UInt32(bitPattern: theta)
            left &-= 1
            if left == 0 { break }
            bit &<<= 1
        }
        return train
    }

    /// Fires `outputs` channels: channel j has the step currents cur[j * channelStride + t * stepStride]
    /// (conv / linear after the event accumulation: channelStride 1, stepStride outputs; a stream
    /// token: channelStride steps, stepStride 1) and the neuron (theta[j], bias[j]); its train goes to
    /// trains[base + j * step]. Returns the spikes.
    @inline(never)
    public static func fireChannels(_ cur: UnsafePointer<Int32>, outputs: Int, steps: Int, delay: Int, shift: Int32,
                                    thresholds theta: UnsafePointer<Int32>, biases bias: UnsafePointer<Int32>,
                                    levels: Int32, trains: UnsafeMutableRawPointer, width: TrainWidth, base: Int,
                                    step: Int, channelStride: Int, stepStride: Int) -> UInt32 {
        var spikes: UInt32 = 0, j = 0, c = cur, o = base
        while j < outputs {
            let t = difTrain(c, stride: stepStride, steps: steps, delay: delay, shift: shift, bias: bias[j],
                             threshold: theta[j], levels: levels)
            setTrain(trains, width, o, t)
            spikes &+= Kernels.spikes(t)
            c += channelStride
            o &+= step
            j &+= 1
        }
        return spikes
    }

    /// The stream neuron on X [N][D] int16 (fused; and the spiking count path, whose stream holds each
    /// value's sum over the steps, all a neuron at D >= T sees, docs/SEMANTICS.md "Prefix trains"):
    /// element (t, j) writes c = neuronCount((X << shift) + bias[j] + theta[j] / 2) into out[t * d + j] as
    /// a count or a prefix train. Returns the spikes (sum of the counts).
    @inline(__always)
    public static func streamNeuron(_ x: UnsafePointer<Int16>, tokens n: Int, width d: Int, shift: Int32,
                                    thresholds theta: UnsafePointer<Int32>, biases bias: UnsafePointer<Int32>,
                                    levels: Int32, output: NeuronOutput, _ out: UnsafeMutablePointer<UInt8>) -> UInt32 {
        #if arch(x86_64)
        if useX86Twins {
            return streamNeuronX86(x, tokens: n, width: d, shift: shift, thresholds: theta, biases: bias, levels: levels,
                                   output: output, out)
        }
        #endif
        return streamNeuronPortable(x, tokens: n, width: d, shift: shift, thresholds: theta, biases: bias, levels: levels,
                                    output: output, out)
    }

    /// The portable loop of `streamNeuron` (x86-64: `streamNeuronX86`): channel by channel, its neuron in
    /// registers; counts and prefix trains in loops of their own.
    @inline(__always)
    public static func streamNeuronPortable(_ x: UnsafePointer<Int16>, tokens n: Int, width d: Int, shift: Int32,
                                            thresholds theta: UnsafePointer<Int32>, biases bias: UnsafePointer<Int32>,
                                            levels: Int32, output: NeuronOutput, _ out: UnsafeMutablePointer<UInt8>) -> UInt32 {
        let sh = UInt32(truncatingIfNeeded: shift) & 31, prefix = output == .prefixTrains
        var spikes: UInt32 = 0, j = 0
        while j < d {
            let th = theta[j], offset = UInt32(bitPattern: bias[j] &+ (th &>> 1))
            var p = x + j, o = out + j
            let end = o + n &* d
            if prefix {
                while o != end {
                    let c = neuronCount(Int32(bitPattern: (UInt32(bitPattern: Int32(p.pointee)) &<< sh) &+ offset), threshold: th, levels: levels)
                    o.pointee = UInt8(truncatingIfNeeded: (1 &<< c) &- 1)
                    spikes &+= c
                    p += d
                    o += d
                }
            } else {
                while o != end {
                    let c = neuronCount(Int32(bitPattern: (UInt32(bitPattern: Int32(p.pointee)) &<< sh) &+ offset), threshold: th, levels: levels)
                    o.pointee = UInt8(truncatingIfNeeded: c)
                    spikes &+= c
                    p += d
                    o += d
                }
            }
            j &+= 1
        }
        return spikes
    }
}
