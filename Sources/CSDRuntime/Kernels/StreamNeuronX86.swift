import CSDMachine

/// The x86-64 twin of `streamNeuron` (DIFNeuron.swift): eight channels of a token per vector, the
/// counts by `neuronCounts` instead of one division per neuron, the eight outputs as one 64-bit
/// store; a group of eight channels loads its parameters and makes the float32 test once for every
/// token, and the spikes add up lane by lane; channels past the last multiple of 8 take the portable
/// formula. Same outputs and spikes.
#if arch(x86_64)
extension Kernels {
    public static func streamNeuronX86(_ x: UnsafePointer<Int16>, tokens n: Int, width d: Int, shift: Int32,
                                       thresholds theta: UnsafePointer<Int32>, biases bias: UnsafePointer<Int32>,
                                       levels: Int32, output: NeuronOutput, _ out: UnsafeMutablePointer<UInt8>) -> UInt32 {
        let sh = UInt32(truncatingIfNeeded: shift) & 31, shifts = SIMD8<Int32>(repeating: Int32(bitPattern: sh))
        let prefix = output == .prefixTrains, one = SIMD8<Int32>(repeating: 1)
        var lanes = SIMD8<Int32>(repeating: 0), j = 0
        while j &+ 8 <= d {  // eight channels: their parameters and float32 test once, then every token
            let th = UnsafeRawPointer(theta + j).loadUnaligned(as: SIMD8<Int32>.self)
            let offset = UnsafeRawPointer(bias + j).loadUnaligned(as: SIMD8<Int32>.self) &+ (th &>> 1)
            let narrow = csd_any_gt_i32x8(th, SIMD8(repeating: narrowThreshold)) == 0
            var t = 0
            while t < n {
                let at: Int = t &* d &+ j
                let v = SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(x + at).loadUnaligned(as: SIMD8<Int16>.self))
                let c = neuronCounts((v &<< shifts) &+ offset, threshold: th, levels: levels, narrow: narrow)
                let o = prefix ? (one &<< c) &- one : c
                UnsafeMutableRawPointer(out + at).storeBytes(of: unsafeBitCast(csd_bytes_i32x8(o), to: UInt64.self), as: UInt64.self)
                lanes &+= c
                t &+= 1
            }
            j &+= 8
        }
        var spikes = UInt32(bitPattern: csd_sum_i32x8(lanes))
        while j < d {  // the last d % 8 channels
            var t = 0
            while t < n {
                let th = theta[j], v = UInt32(bitPattern: Int32(x[t &* d &+ j]))
                let c = neuronCount(Int32(bitPattern: (v &<< sh) &+ UInt32(bitPattern: bias[j]) &+ UInt32(bitPattern: th &>> 1)),
                                    threshold: th, levels: levels)
                out[t &* d &+ j] = UInt8(truncatingIfNeeded: prefix ? (1 &<< c) &- 1 : c)
                spikes &+= c
                t &+= 1
            }
            j &+= 1
        }
        return spikes
    }
}
#endif
