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
        case .attentionScores?: attentionFused(op, values: false, &s)
        case .attentionValues?: attentionFused(op, values: true, &s)
        case .classifier?:
            _ = classifier(op, trains: false)  // spiking mode runs it in runSpiking, on trains
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
            csd_block_put_patches(scratch, input, Int32(truncatingIfNeeded: cin), Int32(truncatingIfNeeded: h),
                                  Int32(truncatingIfNeeded: w), Int32(truncatingIfNeeded: p0), Int32(truncatingIfNeeded: rows), natural)
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
            csd_block_put_rows(scratch, input + t0 &* din, Int32(truncatingIfNeeded: din), 1, Int32(truncatingIfNeeded: rows),
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

    /// Quantizer on the stream: X [N][D] int32 -> counts [N][D] (`csd_stream_neuron`). On the spiking
    /// count path the stream is [N][D][T], and the neuron sees the sum of its T steps (D >= T: every input
    /// before any spike) and writes its prefix train.
    @inlinable mutating func streamNeuronFused(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, d = op.inDims.d1, spiking = plan == .spiking
        s.neurons = UInt32(truncatingIfNeeded: n &* d)
        s.spikes = csd_stream_neuron(stream(op.input(plan)), Int32(truncatingIfNeeded: n), Int32(truncatingIfNeeded: d),
                                     spiking ? Int32(truncatingIfNeeded: steps) : 1, Int32(op.shift), int32s(op.thresholds),
                                     int32s(op.biases), levels, spiking ? 1 : 0, counts(op.output(plan)))
    }

    /// The attention ops, four rows in the scratch block at a time against "weight" rows of counts (<= 16,
    /// read as int8). Scores: acc[h][i][j] = sum over head h's channels c of q[i][c] * k[j][c], output
    /// [heads][N][N]; the rows are queries i (q[i][head h]), the weight rows keys j, one neuron per head.
    /// Values: acc[i][c] = sum_j a[h(c)][i][j] * v[j][c], output [N][D]; the rows are channels c of head h
    /// (column c of v), the weight rows the attention rows a[h][i], a neuron per channel.
    @inline(never) @usableFromInline mutating func attentionFused(_ op: OpRecord, values: Bool, _ s: inout OpStats) {
        let heads = Int(op.heads), n = values ? op.outDims.d0 : op.inDims.d0, d = values ? op.outDims.d1 : op.inDims.d1
        let hd = Int(csd_quot(Int32(truncatingIfNeeded: d), Int32(op.heads))), k = values ? n : hd
        let x = counts(values ? op.input2(plan) : op.input(plan)), output = counts(op.output(plan))
        let w = UnsafeRawPointer(counts(values ? op.input(plan) : op.input2(plan))).assumingMemoryBound(to: Int8.self)
        let k32 = Int32(truncatingIfNeeded: k), n32 = Int32(truncatingIfNeeded: n), d32 = Int32(truncatingIfNeeded: d)
        for h in 0..<heads {
            var r0 = values ? h &* hd : 0
            let end = values ? r0 &+ hd : n
            while r0 < end {
                let rows = min(4, end &- r0)
                // values: row r is column r0 + r of v (stride D); scores: q[r0 + r][head h], contiguous
                csd_block_put_rows(scratch, x + (values ? r0 : r0 &* d &+ h &* hd), values ? 1 : d32, values ? d32 : 1,
                                   Int32(truncatingIfNeeded: rows), k32, 0)
                let p = values ? r0 : h
                var sink = csd_sink_t(out: output + (values ? r0 : (h &* n &+ r0) &* n), stream: nil, theta: int32s(op.thresholds) + p,
                                      bias: int32s(op.biases) + p, pstep: 0, prstep: values ? 1 : 0, cstep: values ? d32 : 1,
                                      rstep: values ? 1 : n32, shift: Int32(op.shift), levels: levels,
                                      rows: Int32(truncatingIfNeeded: rows), set: trainsOut, spikes: 0)
                csd_block_dot_s8(w + (values ? h &* n &* n : h &* hd), values ? n32 : d32, scratch, k32, n32, &sink)
                s.spikes &+= sink.spikes
                r0 &+= 4
            }
        }
        s.neurons = UInt32(truncatingIfNeeded: op.outDims.count)
        s.macs = UInt32(truncatingIfNeeded: op.validatedMacs)
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
