import CSDFormat
import CSDKernels

/// Fused execution (docs/SEMANTICS.md section 3, "fused" column): counts times
/// weights with exact int32 accumulation, then the neuron formula. These are
/// the plain reference kernels; every accumulation wraps instead of trapping.
extension Context {
    @inlinable mutating func runFused(_ op: OpRecord, _ s: inout OpStats) {
        switch op.kind {
        case .conv3x3?:
            let input = op.has(OpFlag.inputPixels) ? pixels : UnsafePointer(counts(op.input(.fused)))
            convFused(op, input, weights(op), &s)
        case .linear?:
            linearFused(op, weights(op), &s)
        case .maxPool?: maxPoolFused(op, &s)
        case .streamNeuron?: streamNeuronFused(op, &s)
        case .attentionScores?: scoresFused(op, &s)
        case .attentionValues?: valuesFused(op, &s)
        case .classifier?: classifierFused(op, &s)
        case nil: break  // unreachable for a validated image
        }
    }

    /// Writes one output of a conv/linear: a neuron count, or the stream (set or add).
    @inlinable func sink(_ op: OpRecord, channel j: Int, neuronIndex: Int, streamIndex: Int, token: Int,
                         acc: Int32, _ s: inout OpStats) {
        if op.writesStream {
            let x = stream(op.output(.fused))
            let biases = int32s(op.biases)
            let bias = op.has(OpFlag.tokenBias) ? biases[streamIndex] : biases[j]
            if op.has(OpFlag.streamSet) {
                x[streamIndex] = acc &+ bias
            } else {
                x[streamIndex] = x[streamIndex] &+ acc &+ bias
            }
        } else {
            let c = neuron(op, j).count(acc)
            counts(op.output(.fused))[neuronIndex] = c
            s.spikes &+= UInt32(c)
        }
    }

    /// conv3x3, stride 1, zero padding 1. input [Cin][H][W] uint8 (pixels or counts), weights [Cout][Cin][3][3].
    /// Index arithmetic wraps (`&+`, `&*`): the validated shapes bound every index, and checked
    /// arithmetic would cost an overflow branch per operation in the innermost loop.
    @inlinable mutating func convFused(_ op: OpRecord, _ input: UnsafePointer<UInt8>, _ weights: Weights, _ s: inout OpStats) {
        let cin = op.inDims.d0, h = op.inDims.d1, w = op.inDims.d2, cout = op.outDims.d0
        let plane = h &* w, fanIn = cin &* 9
        var patch = Patch(repeating: 0)
        var y = 0
        while y < h {
            var x = 0
            while x < w {
                let pos = y &* w &+ x
                if fanIn <= patchCapacity {
                    // Gather the receptive field once (zero padding included), in the weights' order
                    // [Cin][3][3]; then every output channel is one contiguous dot product.
                    var k = 0
                    var i = 0
                    while i < cin {
                        var dy = -1
                        while dy <= 1 {
                            var dx = -1
                            while dx <= 1 {
                                let yy = y &+ dy, xx = x &+ dx
                                patch[k] = yy >= 0 && yy < h && xx >= 0 && xx < w ? input[i &* plane &+ yy &* w &+ xx] : 0
                                k &+= 1
                                dx &+= 1
                            }
                            dy &+= 1
                        }
                        i &+= 1
                    }
                    patch.span.withUnsafeBufferPointer { p in
                        var j = 0
                        while j < cout {
                            let acc = weights.wide
                                ? dot(weights.base.assumingMemoryBound(to: Int16.self) + j &* fanIn, p.baseAddress!, fanIn)
                                : dot(weights.base.assumingMemoryBound(to: Int8.self) + j &* fanIn, p.baseAddress!, fanIn)
                            sink(op, channel: j, neuronIndex: j &* plane &+ pos, streamIndex: pos &* cout &+ j, token: pos, acc: acc, &s)
                            j &+= 1
                        }
                    }
                } else {
                    // A receptive field larger than the patch: tap by tap.
                    var j = 0
                    while j < cout {
                        var acc: Int32 = 0
                        var i = 0
                        while i < cin {
                            var t = 0
                            while t < 9 {
                                let yy = y &+ t / 3 &- 1, xx = x &+ t % 3 &- 1
                                if yy >= 0 && yy < h && xx >= 0 && xx < w {
                                    acc = acc &+ weights[(j &* cin &+ i) &* 9 &+ t] &* Int32(input[i &* plane &+ yy &* w &+ xx])
                                }
                                t &+= 1
                            }
                            i &+= 1
                        }
                        sink(op, channel: j, neuronIndex: j &* plane &+ pos, streamIndex: pos &* cout &+ j, token: pos, acc: acc, &s)
                        j &+= 1
                    }
                }
                x &+= 1
            }
            y &+= 1
        }
        s.neurons = op.writesStream ? 0 : UInt32(truncatingIfNeeded: cout &* plane)
        s.macs = (UInt32(truncatingIfNeeded: op.validatedMacs))
    }

    /// Token-wise linear: input [N][Din] counts, weights [Dout][Din] (int8, or int16 for stream writers).
    @inlinable mutating func linearFused(_ op: OpRecord, _ weights: Weights, _ s: inout OpStats) {
        let n = op.inDims.d0, din = op.inDims.d1, dout = op.outDims.d1
        let input = UnsafePointer(counts(op.input(.fused)))
        var t = 0
        while t < n {
            let row = input + t &* din
            var j = 0
            while j < dout {
                let acc = weights.wide
                    ? dot(weights.base.assumingMemoryBound(to: Int16.self) + j &* din, row, din)
                    : dot(weights.base.assumingMemoryBound(to: Int8.self) + j &* din, row, din)
                sink(op, channel: j, neuronIndex: t &* dout &+ j, streamIndex: t &* dout &+ j, token: t, acc: acc, &s)
                j &+= 1
            }
            t &+= 1
        }
        s.neurons = op.writesStream ? 0 : UInt32(truncatingIfNeeded: n &* dout)
        s.macs = (UInt32(truncatingIfNeeded: op.validatedMacs))
    }

    /// Max over each window: pool 2 (2x2, stride 2) or 3 (3x3, stride 2, pad 1). [C][H][W] -> [C][H'][W'].
    @inlinable mutating func maxPoolFused(_ op: OpRecord, _ s: inout OpStats) {
        let c = op.inDims.d0, h = op.inDims.d1, w = op.inDims.d2, oh = op.outDims.d1, ow = op.outDims.d2
        let input = counts(op.input(.fused)), output = counts(op.output(.fused))
        for ch in 0..<c {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let win = PoolWindow(op, oy: oy, ox: ox, h: h, w: w)
                    var m: UInt8 = 0
                    for y in win.y0..<win.y1 {
                        for x in win.x0..<win.x1 { m = max(m, input[(ch &* h &+ y) &* w &+ x]) }
                    }
                    output[(ch &* oh &+ oy) &* ow &+ ox] = m
                    s.spikes &+= UInt32(m)
                }
            }
        }
        s.neurons = UInt32(truncatingIfNeeded: c &* oh &* ow)
    }

    /// Quantizer on the stream: X [N][D] int32 -> counts [N][D].
    @inlinable mutating func streamNeuronFused(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, d = op.inDims.d1
        let x = stream(op.input(.fused)), output = counts(op.output(.fused))
        for j in 0..<d {
            let nrn = neuron(op, j)
            for t in 0..<n {
                let c = nrn.count(x[t &* d &+ j])
                output[t &* d &+ j] = c
                s.spikes &+= UInt32(c)
            }
        }
        s.neurons = UInt32(truncatingIfNeeded: n &* d)
    }

    /// acc[h][i][j] = sum over head h's channels of q[i][c] * k[j][c]; output [heads][N][N].
    @inlinable mutating func scoresFused(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, d = op.inDims.d1, heads = Int(op.heads), hd = d / heads
        let q = counts(op.input(.fused)), k = counts(op.input2(.fused)), output = counts(op.output(.fused))
        for h in 0..<heads {
            let nrn = neuron(op, h)
            for i in 0..<n {
                let qi = q + i &* d + h &* hd
                for j in 0..<n {
                    let kj = k + j &* d + h &* hd
                    let cnt = nrn.count(csd_dot_u8_u8(qi, kj, Int32(truncatingIfNeeded: hd)))
                    output[(h &* n &+ i) &* n &+ j] = cnt
                    s.spikes &+= UInt32(cnt)
                }
            }
        }
        s.neurons = UInt32(truncatingIfNeeded: heads &* n &* n)
        s.macs = (UInt32(truncatingIfNeeded: op.validatedMacs))
    }

    /// acc[i][c] = sum_j a[h(c)][i][j] * v[j][c]; a [heads][N][N], v [N][D], output [N][D].
    @inlinable mutating func valuesFused(_ op: OpRecord, _ s: inout OpStats) {
        let heads = Int(op.heads), n = op.outDims.d0, d = op.outDims.d1, hd = d / heads
        let a = counts(op.input(.fused)), v = counts(op.input2(.fused)), output = counts(op.output(.fused))
        for i in 0..<n {
            for c in 0..<d {
                let ai = a + ((c / hd) &* n &+ i) &* n
                var acc: Int32 = 0
                for j in 0..<n { acc = acc &+ Int32(ai[j]) &* Int32(v[j &* d &+ c]) }
                let cnt = neuron(op, c).count(acc)
                output[i &* d &+ c] = cnt
                s.spikes &+= UInt32(cnt)
            }
        }
        s.neurons = UInt32(truncatingIfNeeded: n &* d)
        s.macs = (UInt32(truncatingIfNeeded: op.validatedMacs))
    }

    /// logits[j] = beta[j] + sum_c w[j][c] * sum_n counts[n][c].
    @inlinable mutating func classifierFused(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, d = op.inDims.d1, classes = op.outDims.d0
        let input = counts(op.input(.fused)), weights = int8s(op.weights), biases = int32s(op.biases)
        for j in 0..<classes { logits[j] = biases[j] }
        for c in 0..<d {
            var total: Int32 = 0
            for t in 0..<n { total = total &+ Int32(input[t &* d &+ c]) }
            for j in 0..<classes { logits[j] = logits[j] &+ Int32(weights[j &* d &+ c]) &* total }
        }
        s.macs = (UInt32(truncatingIfNeeded: op.validatedMacs))
    }
}
