/// What the classifier reads.
public enum ClassifierInput {
    /// uint8 counts (fused).
    case counts
    /// Spike trains (spiking, uint8 or uint16): every spike adds its column, at every delay.
    case spikeTrains
}

extension Kernels {
    /// The classifier (docs/SEMANTICS.md section 3, CLASSIFIER): logits[j] = bias[j] +
    /// sum_c w[j * d + c] * S_c, with S_c channel c's values of `input` [n][d] summed over the n
    /// tokens (counts, or spikes of trains); weights int8 [classes][d]. Wrapping int32; returns the
    /// sum of S_c.
    @inline(__always)
    public static func classifier(_ input: UnsafeRawPointer, _ values: ClassifierInput, width: TrainWidth, tokens n: Int,
                                  width d: Int, weights w: UnsafePointer<Int8>, biases bias: UnsafePointer<Int32>,
                                  classes: Int, _ logits: UnsafeMutablePointer<Int32>) -> UInt32 {
        #if arch(x86_64)
        if classifierFitsX86(values, width: width, tokens: n) {
            return classifierX86(input.assumingMemoryBound(to: UInt8.self), spikes: values == .spikeTrains, tokens: n, width: d,
                                 weights: w, biases: bias, classes: classes, logits)
        }
        #endif
        var all: UInt32 = 0, j = 0
        while j < classes {
            logits[j] = bias[j]
            j &+= 1
        }
        let spiking = values == .spikeTrains, rowWidth: TrainWidth = spiking ? width : .bits8
        var c = 0
        while c < d {
            var total: UInt32 = 0, t = 0
            while t < n {
                let x = train(input, rowWidth, t &* d &+ c)
                total &+= spiking ? spikes(x) : x
                t &+= 1
            }
            all &+= total
            j = 0
            while j < classes {
                logits[j] = Int32(bitPattern: UInt32(bitPattern: logits[j]) &+ UInt32(bitPattern: Int32(w[j &* d &+ c])) &* total)
                j &+= 1
            }
            c &+= 1
        }
        return all
    }
}
