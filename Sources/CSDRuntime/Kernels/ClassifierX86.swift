import CSDMachine

/// x86-64 hosts: the classifier's channel sums (Classifier.swift) sixteen channels at a time: each
/// token's row of uint8 counts, or of uint8 trains' spike counts (a byte popcount), widened and
/// added in uint16 lanes (a channel's sum over the tokens is at most 255 n, exact while n <= 257;
/// longer inputs and uint16 trains keep the portable loop). Same logits and sum as `classifier`.
#if arch(x86_64)
extension Kernels {
    /// Whether `classifierX86` takes these inputs.
    @inline(__always) static func classifierFitsX86(_ values: ClassifierInput, width: TrainWidth, tokens n: Int) -> Bool {
        useX86Twins && n <= 257 && (values == .counts || width == .bits8)
    }

    /// `classifier` on x86-64 (`classifierFitsX86`).
    static func classifierX86(_ input: UnsafePointer<UInt8>, spikes: Bool, tokens n: Int, width d: Int,
                              weights w: UnsafePointer<Int8>, biases bias: UnsafePointer<Int32>, classes: Int,
                              _ logits: UnsafeMutablePointer<Int32>) -> UInt32 {
        var all: UInt32 = 0, j = 0
        while j < classes {
            logits[j] = bias[j]
            j &+= 1
        }
        var c = 0
        while c < d {
            let m = min(16, d &- c)
            var sums = SIMD16<UInt16>(repeating: 0)
            if m == 16 {
                var t = 0
                while t < n {
                    let at: Int = t &* d &+ c, x = UnsafeRawPointer(input + at).loadUnaligned(as: SIMD16<UInt8>.self)
                    sums &+= SIMD16<UInt16>(truncatingIfNeeded: spikes ? csd_popcount_u8x16(x) : x)
                    t &+= 1
                }
            } else {  // the last d % 16 channels
                var t = 0
                while t < n {
                    var i = 0
                    while i < m {
                        let at: Int = t &* d &+ c &+ i, x = input[at]
                        sums[i] &+= UInt16(spikes ? UInt8(truncatingIfNeeded: x.nonzeroBitCount) : x)
                        i &+= 1
                    }
                    t &+= 1
                }
            }
            var i = 0
            while i < m {
                let total = UInt32(sums[i])
                all &+= total
                j = 0
                while j < classes {
                    let k: Int = j &* d &+ c &+ i
                    logits[j] = Int32(bitPattern: UInt32(bitPattern: logits[j]) &+ UInt32(bitPattern: Int32(w[k])) &* total)
                    j &+= 1
                }
                i &+= 1
            }
            c &+= 16
        }
        return all
    }
}
#endif
