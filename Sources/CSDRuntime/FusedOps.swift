import CSDFormat
import CSDMachine

/// Fused execution (docs/SEMANTICS.md section 3, "fused" column): the driver that tiles each op
/// into the kernels (Kernels/). Counts times weights with exact int32 accumulation, then the neuron
/// formula: conv, linear and the attention pair expand four rows into the kernel scratch
/// (`Kernels.putPatches`, `putRows`) and run a block kernel over every output channel
/// (`blockDotNeurons`, `blockDotStream`). The spiking count path runs the same driver in the same
/// (fused plan's) buffers, with prefix trains as neuron outputs.
extension Context {
    /// Prefix trains on the spiking count path (uint8 trains; with uint16 trains the encoding conv
    /// writes counts and `runCounts` widens them), else counts.
    @inlinable var neuronOutput: NeuronOutput { spiking && !wideTrains ? .prefixTrains : .counts }
    @inlinable var poolValues: PoolValues { spiking && !wideTrains ? .prefixTrains : .counts }

    @inline(never) @usableFromInline mutating func runFused(_ op: OpRecord, index: Int, _ s: inout OpStats) {
        switch op.kind {
        case .conv3x3?:
            let input = op.has(OpFlag.inputPixels) ? pixels : UnsafePointer(counts(op.input(plan)))
            convFused(op, input, &s)
        case .linear?:
            linearFused(op, &s)
        case .maxPool?:
            maxPool(op, poolValues, &s)
        case .streamNeuron?: streamNeuronFused(op, &s)
        case .attentionScores?: attentionFused(op, image.op(index &+ 1), &s)  // the pair, at its first record
        case .attentionValues?: takeValuesStats(&s)
        case .classifier?:
            _ = classifier(op, .counts)  // spiking mode runs it in runSpiking, on trains
            s.macs = UInt32(truncatingIfNeeded: op.validatedMacs)
        case nil: break  // unreachable for a validated image
        }
    }

    /// The statistics the pair left for its ATTN_VALUES record (`valuesStats`, zero again for the next pair).
    @inlinable mutating func takeValuesStats(_ s: inout OpStats) {
        let kind = s.kind
        s = valuesStats
        s.kind = kind
        valuesStats = OpStats()
    }

    /// Every output channel j of a conv/linear against the block in scratch (rows 0 ..< rows, K inputs),
    /// one kernel call that sinks each (channel, row) with the accumulator still in registers: a neuron
    /// at neuron.base + j * neuron.channel + r * neuron.row, or the stream (set or add) likewise at
    /// `stream` (int16 weights).
    @inline(never) @usableFromInline func blockOutputs(_ op: OpRecord, k: Int, outputs: Int, rows: Int,
                                                       neuron nIdx: (base: Int, channel: Int, row: Int),
                                                       stream sIdx: (base: Int, channel: Int, row: Int), _ s: inout OpStats) {
        let biases = int32s(op.biases), tokenBias = op.has(OpFlag.tokenBias), w = data + Int(op.weights)
        let bias = tokenBias ? biases + sIdx.base : biases
        let paramStep = tokenBias ? sIdx.channel : 1, paramRowStep = tokenBias ? sIdx.row : 0
        if op.writesStream {
            let t = plan == .spiking ? steps : 1  // the spiking stream is [N][D][T]: step 0
            let sink = StreamSink(stream: stream(op.output(plan)) + sIdx.base &* t, biases: bias,
                                  outputStep: sIdx.channel &* t, rowStep: sIdx.row &* t, paramStep: paramStep,
                                  paramRowStep: paramRowStep, rows: rows, write: op.has(OpFlag.streamSet) ? .set : .add,
                                  shift: Int32(op.shift))
            Kernels.blockDotStream(w.assumingMemoryBound(to: Int16.self), wstride: k, scratch, k: k, outputs: outputs, sink)
        } else {
            var sink = NeuronSink(out: counts(op.output(plan)) + nIdx.base, thresholds: int32s(op.thresholds), biases: bias,
                                  outputStep: nIdx.channel, rowStep: nIdx.row, paramStep: paramStep, paramRowStep: paramRowStep,
                                  shift: Int32(op.shift), levels: levels, rows: rows, output: neuronOutput)
            Kernels.blockDotNeurons(w.assumingMemoryBound(to: Int8.self), wstride: k, scratch, k: k, outputs: outputs,
                                    order: Kernels.neuronOrder(pixels: op.has(OpFlag.inputPixels)), &sink)
            s.spikes &+= sink.spikes
        }
    }

    /// conv3x3, stride 1, zero padding 1. input [Cin][H][W] uint8 (pixels or counts), weights [Cout][Cin][3][3].
    /// Four output positions at a time: their receptive fields go into the scratch block once, then every
    /// output channel is one pass over its weights.
    @inlinable mutating func convFused(_ op: OpRecord, _ input: UnsafePointer<UInt8>, _ s: inout OpStats) {
        let cin = op.inDims.d0, h = op.inDims.d1, w = op.inDims.d2, cout = op.outDims.d0
        let plane = h &* w, fanIn = cin &* 9
        let order: BlockOrder = op.writesStream ? .natural : Kernels.neuronOrder(pixels: op.has(OpFlag.inputPixels))
        var p0 = 0
        while p0 < plane {
            let rows = min(4, plane &- p0)
            Kernels.putPatches(scratch, input, cin: cin, h: h, w: w, pos: p0, rows: rows, order: order)
            blockOutputs(op, k: fanIn, outputs: cout, rows: rows, neuron: (p0, plane, 1), stream: (p0 &* cout, 1, cout), &s)
            p0 &+= 4
        }
        s.neurons = op.writesStream ? 0 : UInt32(truncatingIfNeeded: cout &* plane)
        s.macs = UInt32(truncatingIfNeeded: op.validatedMacs)
    }

    /// Token-wise linear: input [N][Din] counts, weights [Dout][Din] (int8, or int16 for stream writers).
    /// Four tokens at a time share one expansion of their counts.
    @inlinable mutating func linearFused(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, din = op.inDims.d1, dout = op.outDims.d1
        let input = UnsafePointer(counts(op.input(plan)))
        let order: BlockOrder = op.writesStream ? .natural : Kernels.neuronOrder(pixels: false)
        var t0 = 0
        while t0 < n {
            let rows = min(4, n &- t0)
            Kernels.putRows(scratch, input + t0 &* din, rowStride: din, stride: 1, rows: rows, k: din, order: order)
            blockOutputs(op, k: din, outputs: dout, rows: rows, neuron: (t0 &* dout, 1, dout), stream: (t0 &* dout, 1, dout), &s)
            t0 &+= 4
        }
        s.neurons = op.writesStream ? 0 : UInt32(truncatingIfNeeded: n &* dout)
        s.macs = UInt32(truncatingIfNeeded: op.validatedMacs)
    }

    /// Max over each window: pool 2 (2x2, stride 2) or 3 (3x3, stride 2, pad 1). [C][H][W] -> [C][H'][W'].
    @inline(never) @usableFromInline func maxPool(_ op: OpRecord, _ values: PoolValues, _ s: inout OpStats) {
        let c = op.inDims.d0, oh = op.outDims.d1, ow = op.outDims.d2
        s.spikes = Kernels.maxPool(arena + op.input(plan), values, width: values == .spikeTrains ? trainWidth : .bits8, c: c,
                                   h: op.inDims.d1, w: op.inDims.d2, pool: Int(op.pool), arena + op.output(plan),
                                   oh: oh, ow: ow, steps: steps)
        s.neurons = UInt32(truncatingIfNeeded: c &* oh &* ow)
    }

    /// Quantizer on the stream: X [N][D] int16 -> counts [N][D]. On the spiking count path (the fused plan's
    /// buffers) the stream holds each value's sum over the steps (`runCounts`), all the neuron sees at
    /// D >= T (every input before any spike), and it writes its prefix train.
    @inlinable mutating func streamNeuronFused(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, d = op.inDims.d1
        s.neurons = UInt32(truncatingIfNeeded: n &* d)
        s.spikes = Kernels.streamNeuron(stream(op.input(plan)), tokens: n, width: d,
                                        shift: Int32(op.shift), thresholds: int32s(op.thresholds), biases: int32s(op.biases),
                                        levels: levels, output: spiking ? .prefixTrains : .counts, counts(op.output(plan)))
    }

    /// The attention pair (docs/SEMANTICS.md, "Streamed attention"), on counts (<= 16, read as int8 where
    /// they stand for weights). Per head h: the head's value channels go into the scratch as blocks of four
    /// channels (columns of v) by N keys, once; then per block of eight queries i, their head channels of q
    /// go into the scratch block four queries at a time, the scores a[h][i][j] = sum over the head's
    /// channels c of q[i][c] k[j][c] fire into eight scores rows in the scratch (counts, a neuron per head),
    /// and the values o[i][c] = sum_j a[h][i][j] v[j][c] fire against them (a neuron per channel) into the
    /// output, which may be q's buffer: the block's q rows are in the scratch by then. On the spiking count
    /// path the values neurons write prefix trains, and `synapticOps` adds the values' synaptic operations
    /// per block of scores (`Kernels.pairSynapticOps`, v's side summed once per head). The values'
    /// statistics go to `valuesStats`. Scratch: docs/FORMAT.md, "Kernel scratch".
    @inline(never) @usableFromInline mutating func attentionFused(_ sc: OpRecord, _ va: OpRecord, _ s1: inout OpStats,
                                                                 synapticOps: Bool = false) {
        let heads = Int(sc.heads), n = sc.inDims.d0, d = sc.inDims.d1
        let hd = Int(csd_quot(Int32(truncatingIfNeeded: d), Int32(sc.heads))), groups = (hd &+ 3) &>> 2
        let q = counts(sc.input(plan)), v = counts(va.input2(plan)), output = counts(va.output(plan))
        let k = UnsafeRawPointer(counts(sc.input2(plan))).assumingMemoryBound(to: Int8.self)
        let order = Kernels.neuronOrder(pixels: false)
        let qBlock = UnsafeMutableRawPointer(scratch), vBlocks = qBlock + Kernels.blockBytes(k: hd)
        let vBytes = Kernels.blockBytes(k: n), scores = (vBlocks + groups &* vBytes).assumingMemoryBound(to: UInt8.self)
        let scoresWeights = UnsafeRawPointer(scores).assumingMemoryBound(to: Int8.self)
        let vSums = (UnsafeMutableRawPointer(scores) + ((8 &* n &+ 15) & ~15)).assumingMemoryBound(to: UInt32.self)
        let scoresTheta = int32s(sc.thresholds), scoresBeta = int32s(sc.biases)
        let valuesTheta = int32s(va.thresholds), valuesBeta = int32s(va.biases)
        var h = 0
        while h < heads {
            let c0 = h &* hd
            var g = 0
            while g < groups {  // block g: columns c0 + 4g ..< c0 + 4g + 4 of v, stride D
                Kernels.putRows(vBlocks + g &* vBytes, v + (c0 &+ 4 &* g), rowStride: 1, stride: d, rows: min(4, hd &- 4 &* g),
                                k: n, order: order)
                g &+= 1
            }
            if synapticOps { Kernels.countSums(v + c0, groups: n, by: d, sy: 1, ny: hd, vSums) }  // per key j: v[j][head h]
            var i0 = 0
            while i0 < n {
                let block = min(8, n &- i0)
                var g = -2  // -2, -1: the scores of the block's queries, four at a time; then the values, four channels of v at a time
                while g < groups {
                    let first = g < 0, r0 = (g &+ 2) &* 4, c = c0 &+ 4 &* g  // one call site for both kinds of neuron (code size)
                    let rows = first ? min(4, block &- r0) : min(4, hd &- 4 &* g)
                    if first {
                        if rows <= 0 { g = 0; continue }
                        Kernels.putRows(qBlock, q + ((i0 &+ r0) &* d &+ c0), rowStride: d, stride: 1, rows: rows, k: hd, order: order)
                    }
                    var sink = first
                        ? NeuronSink(out: scores + r0 &* n, thresholds: scoresTheta + h, biases: scoresBeta + h, outputStep: 1,
                                     rowStep: n, paramStep: 0, paramRowStep: 0, shift: Int32(sc.shift), levels: levels, rows: rows,
                                     output: .counts)
                        : NeuronSink(out: output + (i0 &* d &+ c), thresholds: valuesTheta + c, biases: valuesBeta + c,
                                     outputStep: d, rowStep: 1, paramStep: 0, paramRowStep: 1, shift: Int32(va.shift),
                                     levels: levels, rows: rows, output: neuronOutput)
                    Kernels.blockDotNeurons(first ? k + c0 : scoresWeights, wstride: first ? d : n,
                                            UnsafeRawPointer(first ? qBlock : vBlocks + g &* vBytes), k: first ? hd : n,
                                            outputs: first ? n : block, order: order, &sink)
                    if first {
                        s1.spikes &+= sink.spikes
                    } else {
                        valuesStats.spikes &+= sink.spikes
                    }
                    g &+= 1
                }
                if synapticOps {  // a group per key j: a[h][i][j] (the block's rows) against v[j][c], c in head h
                    valuesStats.synapticOps &+= Kernels.pairSynapticOps(scores, groups: n, bx: 1, sx: n, nx: block, ySums: vSums)
                }
                i0 &+= 8
            }
            h &+= 1
        }
        s1.neurons = UInt32(truncatingIfNeeded: sc.outDims.count)
        valuesStats.neurons = UInt32(truncatingIfNeeded: va.outDims.count)
        s1.macs = UInt32(truncatingIfNeeded: sc.validatedMacs)
        valuesStats.macs = UInt32(truncatingIfNeeded: va.validatedMacs)
    }

    /// logits[j] = beta[j] + sum_c w[j][c] * S_c, S_c = channel c's counts summed over the tokens (fused) or
    /// its spikes over tokens and steps (spiking: every spike adds its column; the same sum at every delay).
    /// Returns the sum of S_c.
    @inline(never) @usableFromInline func classifier(_ op: OpRecord, _ values: ClassifierInput) -> UInt32 {
        Kernels.classifier(arena + op.input(plan), values, width: trainWidth, tokens: op.inDims.d0, width: op.inDims.d1,
                           weights: int8s(op.weights), biases: int32s(op.biases), classes: op.outDims.d0, logits)
    }
}
