import CSDFormat
import CSDKernels

/// Fused execution (docs/SEMANTICS.md section 3, "fused" column): counts times
/// weights with exact int32 accumulation, then the neuron formula. The conv,
/// linear and attention ops expand four rows into the kernel scratch and run
/// the block kernels of CSDKernels (SMLAD twin on DSP cores); every
/// accumulation wraps instead of trapping.
extension Context {
    /// 1 on the spiking count path: neuron sinks and max-pool write prefix trains instead of counts
    /// (uint8 trains; with uint16 trains the encoding conv writes counts and `runCounts` widens them).
    @inlinable var trainsOut: Int32 { plan == .spiking && !wideTrains ? 1 : 0 }

    @inline(never) @usableFromInline mutating func runFused(_ op: OpRecord, _ s: inout OpStats) {
        switch op.kind {
        case .conv3x3?:
            let input = op.has(OpFlag.inputPixels) ? pixels : UnsafePointer(counts(op.input(plan)))
            convFused(op, input, weights(op), &s)
        case .linear?:
            linearFused(op, weights(op), &s)
        case .maxPool?: maxPool(op, events: false, &s)
        case .streamNeuron?: streamNeuronFused(op, &s)
        case .attentionScores?: scoresFused(op, &s)
        case .attentionValues?: valuesFused(op, &s)
        case .classifier?:
            _ = classifier(op, trains: plan == .spiking)
            s.macs = UInt32(truncatingIfNeeded: op.validatedMacs)
        case nil: break  // unreachable for a validated image
        }
    }

    /// Every output channel j of a conv/linear against the block in scratch (rows 0 ..< rows, K inputs),
    /// one kernel call; the kernel sinks each (channel, row) with the accumulator still in registers:
    /// a neuron count at neuron.base + j * neuron.channel + r * neuron.row, or the stream (set or add)
    /// likewise at `stream` (see `csd_sink_t`).
    @inline(never) @usableFromInline func blockOutputs(_ op: OpRecord, _ weights: Weights, k: Int, outputs: Int, rows: Int,
                                                       neuron nIdx: (base: Int, channel: Int, row: Int),
                                                       stream sIdx: (base: Int, channel: Int, row: Int), _ s: inout OpStats) {
        let biases = int32s(op.biases), toStream = op.writesStream, tokenBias = op.has(OpFlag.tokenBias)
        let t = toStream && plan == .spiking ? steps : 1  // the spiking stream is [N][D][T]: step 0
        let idx = toStream ? sIdx : nIdx
        var sink = csd_sink_t(out: toStream ? nil : counts(op.output(plan)) + nIdx.base,
                              stream: toStream ? stream(op.output(plan)) + sIdx.base &* t : nil,
                              theta: int32s(op.thresholds), bias: tokenBias ? biases + sIdx.base : biases,
                              pstep: Int32(truncatingIfNeeded: tokenBias ? sIdx.channel : 1),
                              prstep: Int32(truncatingIfNeeded: tokenBias ? sIdx.row : 0),
                              cstep: Int32(truncatingIfNeeded: idx.channel &* t), rstep: Int32(truncatingIfNeeded: idx.row &* t),
                              shift: Int32(op.shift), levels: levels, rows: Int32(truncatingIfNeeded: rows),
                              set: toStream ? (op.has(OpFlag.streamSet) ? 1 : 0) : trainsOut, spikes: 0)
        let kk = Int32(truncatingIfNeeded: k), m = Int32(truncatingIfNeeded: outputs)
        if weights.wide {
            csd_block_dot_s16(weights.base.assumingMemoryBound(to: Int16.self), kk, scratch, kk, m, &sink)
        } else {
            csd_block_dot_s8(weights.base.assumingMemoryBound(to: Int8.self), kk, scratch, kk, m, &sink)
        }
        s.spikes &+= sink.spikes
    }

    /// conv3x3, stride 1, zero padding 1. input [Cin][H][W] uint8 (pixels or counts), weights [Cout][Cin][3][3].
    /// Four output positions at a time: their receptive fields go into the scratch block once, then every
    /// output channel is one pass over its weights. Index arithmetic wraps (`&+`, `&*`): the validated
    /// shapes bound every index, and checked arithmetic would cost a branch per operation.
    @inlinable mutating func convFused(_ op: OpRecord, _ input: UnsafePointer<UInt8>, _ weights: Weights, _ s: inout OpStats) {
        let cin = op.inDims.d0, h = op.inDims.d1, w = op.inDims.d2, cout = op.outDims.d0
        let plane = h &* w, fanIn = cin &* 9
        let natural: Int32 = weights.wide ? 1 : 0
        var p0 = 0
        while p0 < plane {
            let rows = min(4, plane &- p0)
            var r = 0
            while r < 4 {
                if r < rows {
                    let pos = p0 &+ r
                    csd_block_put_patch(scratch, Int32(truncatingIfNeeded: r), input, Int32(truncatingIfNeeded: cin),
                                        Int32(truncatingIfNeeded: h), Int32(truncatingIfNeeded: w),
                                        Int32(truncatingIfNeeded: pos), natural)
                } else {
                    csd_block_zero_row(scratch, Int32(truncatingIfNeeded: r), Int32(truncatingIfNeeded: fanIn))
                }
                r &+= 1
            }
            blockOutputs(op, weights, k: fanIn, outputs: cout, rows: rows, neuron: (p0, plane, 1), stream: (p0 &* cout, 1, cout), &s)
            p0 &+= 4
        }
        s.neurons = op.writesStream ? 0 : UInt32(truncatingIfNeeded: cout &* plane)
        s.macs = (UInt32(truncatingIfNeeded: op.validatedMacs))
    }

    /// Token-wise linear: input [N][Din] counts, weights [Dout][Din] (int8, or int16 for stream writers).
    /// Four tokens at a time share one expansion of their counts.
    @inlinable mutating func linearFused(_ op: OpRecord, _ weights: Weights, _ s: inout OpStats) {
        let n = op.inDims.d0, din = op.inDims.d1, dout = op.outDims.d1
        let input = UnsafePointer(counts(op.input(plan)))
        let natural: Int32 = weights.wide ? 1 : 0
        var t0 = 0
        while t0 < n {
            let rows = min(4, n &- t0)
            csd_block_put_rows(scratch, input + t0 &* din, Int32(truncatingIfNeeded: din), Int32(truncatingIfNeeded: rows),
                               Int32(truncatingIfNeeded: din), natural)
            blockOutputs(op, weights, k: din, outputs: dout, rows: rows, neuron: (t0 &* dout, 1, dout),
                         stream: (t0 &* dout, 1, dout), &s)
            t0 &+= 4
        }
        s.neurons = op.writesStream ? 0 : UInt32(truncatingIfNeeded: n &* dout)
        s.macs = (UInt32(truncatingIfNeeded: op.validatedMacs))
    }

    /// Max over each window: pool 2 (2x2, stride 2) or 3 (3x3, stride 2, pad 1). [C][H][W] -> [C][H'][W'].
    /// Fused on counts, or spiking on trains (`csd_maxpool`: prefix trains on the count path, running counts
    /// on the event path).
    @inline(never) @usableFromInline func maxPool(_ op: OpRecord, events: Bool, _ s: inout OpStats) {
        let c = op.inDims.d0, oh = op.outDims.d1, ow = op.outDims.d2
        s.spikes = csd_maxpool(arena + op.input(plan), events ? 2 : trainsOut, events && wideTrains ? 1 : 0,
                               Int32(truncatingIfNeeded: c), Int32(truncatingIfNeeded: op.inDims.d1),
                               Int32(truncatingIfNeeded: op.inDims.d2), Int32(op.pool), arena + op.output(plan),
                               Int32(truncatingIfNeeded: oh), Int32(truncatingIfNeeded: ow), Int32(truncatingIfNeeded: steps))
        s.neurons = UInt32(truncatingIfNeeded: c &* oh &* ow)
    }

    /// Quantizer on the stream: X [N][D] int32 -> counts [N][D].
    @inlinable mutating func streamNeuronFused(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, d = op.inDims.d1
        let x = stream(op.input(plan)), output = counts(op.output(plan))
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
    /// Four queries at a time in the scratch block; each key row is the "weight" row (counts <= 16
    /// read as int8).
    @inlinable mutating func scoresFused(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, d = op.inDims.d1, heads = Int(op.heads), hd = Int(csd_quot(Int32(truncatingIfNeeded: d), Int32(op.heads)))
        let q = counts(op.input(plan)), output = counts(op.output(plan))
        let k = UnsafeRawPointer(counts(op.input2(plan))).assumingMemoryBound(to: Int8.self)
        let kk = Int32(truncatingIfNeeded: hd), n32 = Int32(truncatingIfNeeded: n)
        for h in 0..<heads {
            var i0 = 0
            while i0 < n {
                let rows = min(4, n &- i0)
                csd_block_put_rows(scratch, q + (i0 &* d &+ h &* hd), Int32(truncatingIfNeeded: d),
                                   Int32(truncatingIfNeeded: rows), kk, 0)
                // outputs j = keys (one neuron per head), rows = queries
                var sink = csd_sink_t(out: output + (h &* n &+ i0) &* n, stream: nil, theta: int32s(op.thresholds) + h,
                                      bias: int32s(op.biases) + h, pstep: 0, prstep: 0, cstep: 1, rstep: n32,
                                      shift: Int32(op.shift), levels: levels, rows: Int32(truncatingIfNeeded: rows),
                                      set: trainsOut, spikes: 0)
                csd_block_dot_s8(k + h &* hd, Int32(truncatingIfNeeded: d), scratch, kk, n32, &sink)
                s.spikes &+= sink.spikes
                i0 &+= 4
            }
        }
        s.neurons = UInt32(truncatingIfNeeded: heads &* n &* n)
        s.macs = (UInt32(truncatingIfNeeded: op.validatedMacs))
    }

    /// acc[i][c] = sum_j a[h(c)][i][j] * v[j][c]; a [heads][N][N], v [N][D], output [N][D].
    /// Four channels of one head at a time: their columns of v go into the scratch block, and each
    /// attention row a[h][i] is the "weight" row (counts <= 16 read as int8).
    @inlinable mutating func valuesFused(_ op: OpRecord, _ s: inout OpStats) {
        let heads = Int(op.heads), n = op.outDims.d0, d = op.outDims.d1, hd = Int(csd_quot(Int32(truncatingIfNeeded: d), Int32(op.heads)))
        let a = UnsafeRawPointer(counts(op.input(plan))).assumingMemoryBound(to: Int8.self)
        let v = counts(op.input2(plan)), output = counts(op.output(plan))
        let kn = Int32(truncatingIfNeeded: n)
        for h in 0..<heads {
            let end = (h &+ 1) &* hd
            var c0 = h &* hd
            while c0 < end {
                let rows = min(4, end &- c0)
                var r = 0
                while r < 4 {
                    if r < rows {
                        csd_block_put_row(scratch, Int32(truncatingIfNeeded: r), v + (c0 &+ r), Int32(truncatingIfNeeded: d), kn, 0)
                    } else {
                        csd_block_zero_row(scratch, Int32(truncatingIfNeeded: r), kn)
                    }
                    r &+= 1
                }
                // outputs i = queries (attention rows), rows = channels c0 + r (a neuron each)
                var sink = csd_sink_t(out: output + c0, stream: nil, theta: int32s(op.thresholds) + c0,
                                      bias: int32s(op.biases) + c0, pstep: 0, prstep: 1, cstep: Int32(truncatingIfNeeded: d),
                                      rstep: 1, shift: Int32(op.shift), levels: levels, rows: Int32(truncatingIfNeeded: rows),
                                      set: trainsOut, spikes: 0)
                csd_block_dot_s8(a + h &* n &* n, kn, scratch, kn, kn, &sink)
                s.spikes &+= sink.spikes
                c0 &+= 4
            }
        }
        s.neurons = UInt32(truncatingIfNeeded: n &* d)
        s.macs = (UInt32(truncatingIfNeeded: op.validatedMacs))
    }

    /// logits[j] = beta[j] + sum_c w[j][c] * S_c, S_c = channel c's counts summed over the tokens (fused) or
    /// its spikes over tokens and steps (spiking: every spike adds its column; the same sum at every delay).
    /// Returns the sum of S_c.
    @inline(never) @usableFromInline func classifier(_ op: OpRecord, trains: Bool) -> UInt32 {
        csd_classifier(arena + op.input(plan), trains ? 1 : 0, wideTrains && trains ? 1 : 0, Int32(truncatingIfNeeded: op.inDims.d0),
                       Int32(truncatingIfNeeded: op.inDims.d1), int8s(op.weights), int32s(op.biases),
                       Int32(truncatingIfNeeded: op.outDims.d0), logits)
    }
}
