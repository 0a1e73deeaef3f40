import CSDMachine

/// The x86-64 twin of `streamNeuron` (DIFNeuron.swift): eight channels of a token per vector, the
/// counts by `neuronCounts` instead of one division per neuron, the eight outputs as one 64-bit
/// store; channels past the last multiple of 8 take the portable formula. Same outputs and spikes.
#if arch(x86_64)
extension Kernels {
    public static func streamNeuronX86(_ x: UnsafePointer<Int16>, tokens n: Int, width d: Int, shift: Int32,
                                       thresholds theta: UnsafePointer<Int32>, biases bias: UnsafePointer<Int32>,
                                       levels: Int32, output: NeuronOutput, _ out: UnsafeMutablePointer<UInt8>) -> UInt32 {
        let sh = UInt32(truncatingIfNeeded: shift) & 31, shifts = SIMD8<Int32>(repeating: Int32(bitPattern: sh))
        let prefix = output == .prefixTrains
        var spikes: UInt32 = 0, t = 0
        while t < n {
            var j = 0
            while j &+ 8 <= d {
                let v = SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(x + (t &* d &+ j)).loadUnaligned(as: SIMD8<Int16>.self))
                let th = UnsafeRawPointer(theta + j).loadUnaligned(as: SIMD8<Int32>.self)
                let b = UnsafeRawPointer(bias + j).loadUnaligned(as: SIMD8<Int32>.self)
                let c = neuronCounts((v &<< shifts) &+ b &+ (th &>> 1), threshold: th, levels: levels)
                let o = prefix ? (SIMD8<Int32>(repeating: 1) &<< c) &- 1 : c
                UnsafeMutableRawPointer(out + (t &* d &+ j)).storeBytes(of: unsafeBitCast(csd_bytes_i32x8(o), to: UInt64.self),
                                                                        as: UInt64.self)
                spikes &+= UInt32(bitPattern: csd_sum_i32x8(c))
                j &+= 8
            }
            while j < d {  // the last d % 8 channels
                let th = theta[j], v = UInt32(bitPattern: Int32(x[t &* d &+ j]))
                let c = neuronCount(Int32(bitPattern: (v &<< sh) &+ UInt32(bitPattern: bias[j]) &+ UInt32(bitPattern: th &>> 1)),
                                    threshold: th, levels: levels)
                out[t &* d &+ j] = UInt8(truncatingIfNeeded: prefix ? (1 &<< c) &- 1 : c)
                spikes &+= c
                j &+= 1
            }
            t &+= 1
        }
        return spikes
    }
}
#endif
