import CSDFormat
import CSDMachine

/// Fused execution (docs/SEMANTICS.md section 3, "fused" column): the driver that tiles each op
/// into the kernels (Kernels/). Counts times weights with exact int32 accumulation, then the neuron
/// formula: conv, linear and the attention pair expand four rows into the kernel scratch
/// (`Kernels.putPatches`, `putRows`) and run a block kernel over every output channel
/// (`blockDotNeurons`, `blockDotStream`). The spiking count path runs the same driver in the same
/// (fused plan's) buffers, with prefix trains as neuron outputs.
/// Where the attention pair reads q, k and v (`attentionRows`): query i's head h channels at
/// q + (i - firstQuery) qStride + h qHead, key j's at k + j kStride + h kHead, head h's value rows
/// (channel-major, N counts each) at v + h vHead; the heads and queries [first, end) to run.
@usableFromInline struct AttentionView {
    @usableFromInline var q: UnsafeMutablePointer<UInt8>
    @usableFromInline var qStride: Int, qHead: Int, firstQuery: Int
    @usableFromInline var k: UnsafePointer<Int8>
    @usableFromInline var kStride: Int, kHead: Int
    @usableFromInline var v: UnsafePointer<Int8>
    @usableFromInline var vHead: Int
    @usableFromInline var heads: (Int, Int), queries: (Int, Int)
    @inlinable init(q: UnsafeMutablePointer<UInt8>, qStride: Int, qHead: Int, firstQuery: Int, k: UnsafePointer<Int8>, kStride: Int,
                    kHead: Int, v: UnsafePointer<Int8>, vHead: Int, heads: (Int, Int), queries: (Int, Int)) {
        self.q = q; self.qStride = qStride; self.qHead = qHead; self.firstQuery = firstQuery
        self.k = k; self.kStride = kStride; self.kHead = kHead; self.v = v; self.vHead = vHead
        self.heads = heads; self.queries = queries
    }
}

extension Context {
    /// Prefix trains on the spiking count path (uint8 trains; with uint16 trains the encoding conv
    /// writes counts and `runCounts` widens them), else counts.
    @inlinable var neuronOutput: NeuronOutput { spiking && !wideTrains ? .prefixTrains : .counts }
    @inlinable var poolValues: PoolValues { spiking && !wideTrains ? .prefixTrains : .counts }

    @inline(never) @usableFromInline mutating func runFused(_ op: OpRecord, index: Int, _ s: inout OpStats) {
        switch op.kind {
        case .conv3x3?:
            let input = op.has(OpFlag.inputPixels) ? pixels : UnsafePointer(counts(op.input(plan)))
            convFused(op, input, rows: (0, op.outDims.d1), outPlane: op.outDims.d1 &* op.outDims.d2, &s)
        case .linear?:
            linearFused(op, tokens: (0, op.inDims.d0), inputRow: 0, outputRow: 0, channels: (0, op.outDims.d1), &s)
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

    /// Every output channel j of a conv/linear against the block (rows 0 ..< rows, K inputs; more than
    /// four rows: a pair of blocks, `Kernels.pairBlocks`),
    /// one kernel call that sinks each (channel, row) with the accumulator still in registers: a neuron
    /// at neuron.base + j * neuron.channel + r * neuron.row, or the stream (set or add) likewise at
    /// `stream` (int16 weights).
    /// Output channels `first ..< first + outputs` (an attention unit's head; else all, `first` 0).
    @inline(never) @usableFromInline func blockOutputs(_ op: OpRecord, _ block: UnsafeRawPointer, k: Int, first: Int, outputs: Int,
                                                       rows: Int, neuron nIdx: (base: Int, channel: Int, row: Int),
                                                       stream sIdx: (base: Int, channel: Int, row: Int), _ s: inout OpStats) {
        let biases = int32s(op.biases) + first, tokenBias = op.has(OpFlag.tokenBias), w = data + Int(op.weights)
        let bias = tokenBias ? biases + sIdx.base : biases
        let paramStep = tokenBias ? sIdx.channel : 1, paramRowStep = tokenBias ? sIdx.row : 0
        if op.writesStream {
            let t = plan == .spiking ? steps : 1  // the spiking stream is [N][D][T]: step 0
            let sink = StreamSink(stream: stream(op.output(plan)) + sIdx.base &* t, biases: bias,
                                  outputStep: sIdx.channel &* t, rowStep: sIdx.row &* t, paramStep: paramStep,
                                  paramRowStep: paramRowStep, rows: rows, write: op.has(OpFlag.streamSet) ? .set : .add,
                                  shift: Int32(op.shift))
            Kernels.blockDotStream(w.assumingMemoryBound(to: Int16.self), wstride: k, block, k: k, outputs: outputs, sink)
        } else {
            var sink = NeuronSink(out: counts(op.output(plan)) + nIdx.base, thresholds: int32s(op.thresholds) + first, biases: bias,
                                  outputStep: nIdx.channel, rowStep: nIdx.row, paramStep: paramStep, paramRowStep: paramRowStep,
                                  shift: Int32(op.shift), levels: levels, rows: rows, output: neuronOutput)
            Kernels.blockDotNeurons(w.assumingMemoryBound(to: Int8.self) + first &* k, wstride: k, block, k: k, outputs: outputs,
                                    order: Kernels.neuronOrder(pixels: op.has(OpFlag.inputPixels)), &sink)
            s.spikes &+= sink.spikes
        }
    }

    /// conv3x3, stride 1, zero padding 1. input [Cin][H][W] uint8 (pixels or counts), weights [Cout][Cin][3][3].
    /// Four output positions at a time: their receptive fields go into the scratch block once, then every
    /// output channel is one pass over its weights. On x86-64 hosts eight at a time when a pair of blocks
    /// of K fits `Kernels.pairBlockBytes`: the pair in the run's stack buffer (`Kernels.pairBlocks`).
    /// The output rows `rows` (y0 ..< y1) of the map, channel c's row y at `c * outPlane + (y - y0) * W` of the
    /// output buffer: the whole map (rows 0 ..< H, outPlane H W), or a band (docs/FORMAT.md, "Bands":
    /// outPlane band W). A stream writer runs whole.
    @inline(never) @usableFromInline mutating func convFused(_ op: OpRecord, _ input: UnsafePointer<UInt8>, rows: (Int, Int), outPlane: Int,
                                       _ s: inout OpStats) {
        #if arch(x86_64)
        if let buffer = pairBlocks, op.has(OpFlag.inputPixels), !op.writesStream,  // (pairBlocks: only with the twins)
           Kernels.pixelConvBytes(cin: op.inDims.d0, h: op.inDims.d1, w: op.inDims.d2, cout: op.outDims.d0) <= Kernels.pairBlockBytes {
            pixelConv(op, input, buffer, rows: rows, outPlane: outPlane, &s)
            return
        }
        if let pair = pairBlocks, Kernels.pairFits(k: op.inDims.d0 &* 9) {
            convRows(op, input, pair, step: 8, rows: rows, outPlane: outPlane, &s)
            return
        }
        #endif
        convRows(op, input, UnsafeMutableRawPointer(scratch), step: 4, rows: rows, outPlane: outPlane, &s)
    }

    #if arch(x86_64)
    /// `convFused` of an encoding conv on x86-64 hosts: positions as vector lanes, no blocks
    /// (`Kernels.pixelConvX86`), in the run's stack buffer; a band after the first reuses what the first
    /// laid out there (the unit's max-pool does not use the buffer).
    @inline(never) @usableFromInline func pixelConv(_ op: OpRecord, _ input: UnsafePointer<UInt8>, _ buffer: UnsafeMutableRawPointer,
                                                    rows: (Int, Int), outPlane: Int, _ s: inout OpStats) {
        let cout = op.outDims.d0, plane = op.inDims.d1 &* op.inDims.d2
        let sink = NeuronSink(out: counts(op.output(plan)), thresholds: int32s(op.thresholds), biases: int32s(op.biases),
                              outputStep: outPlane, rowStep: 1, paramStep: 1, paramRowStep: 0, shift: Int32(op.shift),
                              levels: levels, rows: 1, output: neuronOutput)
        s.spikes &+= Kernels.pixelConvX86(input, cin: op.inDims.d0, h: op.inDims.d1, w: op.inDims.d2,
                                          weights: (data + Int(op.weights)).assumingMemoryBound(to: Int8.self), cout: cout,
                                          sink, buffer: buffer, rows: rows, laidOut: rows.0 != 0)
        s.neurons = UInt32(truncatingIfNeeded: cout &* plane)
        s.macs = UInt32(truncatingIfNeeded: op.validatedMacs)
    }
    #endif

    /// `convFused` with `step` positions (4, or 8: a pair of blocks) at a time into `block`.
    @inlinable func convRows(_ op: OpRecord, _ input: UnsafePointer<UInt8>, _ block: UnsafeMutableRawPointer, step: Int,
                             rows band: (Int, Int), outPlane: Int, _ s: inout OpStats) {
        let cin = op.inDims.d0, h = op.inDims.d1, w = op.inDims.d2, cout = op.outDims.d0
        let plane = h &* w, fanIn = cin &* 9, end = band.1 &* w, first = band.0 &* w
        let order: BlockOrder = op.writesStream ? .natural : Kernels.neuronOrder(pixels: op.has(OpFlag.inputPixels))
        #if arch(x86_64)
        // x86-64, a pair of blocks: the map's zero-bordered copy after the pair, if it fits (no bounds tests in the
        // gather); made by the first band, and kept for the others (the unit's max-pool does not use the buffer)
        let pairBytes = 2 &* Kernels.blockBytes(k: fanIn)
        let bordered = step == 8 && pairBytes &+ Kernels.borderedBytes(cin: cin, h: h, w: w) <= Kernels.pairBlockBytes
        let map = (block + pairBytes).assumingMemoryBound(to: UInt8.self)
        if bordered && first == 0 { Kernels.borderedCopy(input, cin: cin, h: h, w: w, into: map, rowBytes: w &+ 2) }
        #endif
        var p0 = first
        while p0 < end {
            let rows = min(step, end &- p0)
            #if arch(x86_64)
            if bordered {
                Kernels.putFieldBlocks(block, map, cin: cin, h: h, w: w, pos: p0, rows: rows, halves: order != .bytes)
            } else {
                Kernels.putPatchBlocks(block, input, cin: cin, h: h, w: w, pos: p0, rows: rows, order: order)
            }
            #else
            Kernels.putPatchBlocks(block, input, cin: cin, h: h, w: w, pos: p0, rows: rows, order: order)
            #endif
            blockOutputs(op, block, k: fanIn, first: 0, outputs: cout, rows: rows, neuron: (p0 &- first, outPlane, 1),
                         stream: (p0 &* cout, 1, cout), &s)
            p0 &+= step
        }
        s.neurons = op.writesStream ? 0 : UInt32(truncatingIfNeeded: cout &* plane)
        s.macs = UInt32(truncatingIfNeeded: op.validatedMacs)
    }

    /// Token-wise linear: input [N][Din] counts, weights [Dout][Din] (int8, or int16 for stream writers), output
    /// [N][Dout] (CHANNEL_MAJOR: [Dout][N]). Four tokens at a time share one expansion of their counts; on
    /// x86-64 hosts eight, as in `convFused`.
    /// The tokens `tokens` (t0 ..< t1): token t's input row at row t - `inputRow` of the input buffer, its
    /// output at row t - `outputRow` of the output (a band's producer and consumer, docs/FORMAT.md "Bands";
    /// both 0 for the whole value; a channel-major output and the stream take whole rows). The output
    /// channels `channels` (first, count): all, (0, Dout), or an attention unit's head, whose buffer holds
    /// `count` channels per row (channel-major: `count` rows of N; docs/FORMAT.md, "Attention units").
    @inline(never) @usableFromInline mutating func linearFused(_ op: OpRecord, tokens: (Int, Int), inputRow: Int, outputRow: Int,
                                                              channels: (Int, Int), _ s: inout OpStats) {
        #if arch(x86_64)
        if let pair = pairBlocks, Kernels.pairFits(k: op.inDims.d1) {
            linearRows(op, pair, step: 8, tokens: tokens, inputRow: inputRow, outputRow: outputRow, channels: channels, &s)
            return
        }
        #endif
        linearRows(op, UnsafeMutableRawPointer(scratch), step: 4, tokens: tokens, inputRow: inputRow, outputRow: outputRow,
                   channels: channels, &s)
    }

    /// `linearFused` with `step` tokens (4, or 8: a pair of blocks) at a time into `block`.
    @inlinable func linearRows(_ op: OpRecord, _ block: UnsafeMutableRawPointer, step: Int, tokens: (Int, Int),
                               inputRow: Int, outputRow: Int, channels: (Int, Int), _ s: inout OpStats) {
        let n = op.inDims.d0, din = op.inDims.d1, dout = op.outDims.d1, held = channels.1
        let input = UnsafePointer(counts(op.input(plan)))
        let order: BlockOrder = op.writesStream ? .natural : Kernels.neuronOrder(pixels: false)
        let major = op.has(OpFlag.channelMajor)
        var t0 = tokens.0
        while t0 < tokens.1 {
            let rows = min(step, tokens.1 &- t0)
            Kernels.putRowBlocks(block, input + (t0 &- inputRow) &* din, rowStride: din, rows: rows, k: din, order: order)
            blockOutputs(op, block, k: din, first: channels.0, outputs: held, rows: rows,
                         neuron: major ? (t0, n, 1) : ((t0 &- outputRow) &* held, 1, held), stream: (t0 &* dout, 1, dout), &s)
            t0 &+= step
        }
        s.neurons = op.writesStream ? 0 : UInt32(truncatingIfNeeded: n &* dout)
        s.macs = UInt32(truncatingIfNeeded: op.validatedMacs)
    }

    /// Max over each window: pool 2 (2x2, stride 2) or 3 (3x3, stride 2, pad 1). [C][H][W] -> [C][H'][W'].
    @inlinable func maxPool(_ op: OpRecord, _ values: PoolValues, _ s: inout OpStats) {
        let c = op.inDims.d0, oh = op.outDims.d1, ow = op.outDims.d2
        s.spikes = poolMap(arena + op.input(plan), values, c: c, h: op.inDims.d1, w: op.inDims.d2, pool: Int(op.pool),
                           arena + op.output(plan), oh: oh, ow: ow, inPlane: op.inDims.d1 &* op.inDims.d2, outPlane: oh &* ow)
        s.neurons = UInt32(truncatingIfNeeded: c &* oh &* ow)
    }

    /// `Kernels.maxPool` in one place (the op, and a band unit's rows; `runBands`).
    @inline(never) @usableFromInline func poolMap(_ input: UnsafeRawPointer, _ values: PoolValues, c: Int, h: Int, w: Int, pool: Int,
                                                  _ output: UnsafeMutableRawPointer, oh: Int, ow: Int, inPlane: Int,
                                                  outPlane: Int) -> UInt32 {
        Kernels.maxPool(input, values, width: values == .spikeTrains ? trainWidth : .bits8, c: c, h: h, w: w, pool: pool, output,
                        oh: oh, ow: ow, steps: steps, inPlane: inPlane, outPlane: outPlane)
    }

    /// Quantizer on the stream: X [N][D] int16 -> counts [N][D]. On the spiking count path (the fused plan's
    /// buffers) the stream holds each value's sum over the steps (`runCounts`), all the neuron sees at
    /// D >= T (every input before any spike), and it writes its prefix train.
    @inlinable mutating func streamNeuronFused(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, d = op.inDims.d1
        s.neurons = UInt32(truncatingIfNeeded: n &* d)
        s.spikes = streamNeuronRows(op, tokens: (0, n), output: spiking ? .prefixTrains : .counts)
    }

    /// The stream neuron's tokens `tokens` (t0 ..< t1) into the rows 0 ..< t1 - t0 of its output buffer (the whole
    /// value, or an attention unit's band of u); returns their spikes.
    @inline(never) @usableFromInline func streamNeuronRows(_ op: OpRecord, tokens: (Int, Int), output: NeuronOutput) -> UInt32 {
        let d = op.inDims.d1
        return Kernels.streamNeuron(stream(op.input(plan)) + tokens.0 &* d, tokens: tokens.1 &- tokens.0, width: d,
                                    shift: Int32(op.shift), thresholds: int32s(op.thresholds), biases: int32s(op.biases),
                                    levels: levels, output: output, counts(op.output(plan)))
    }

    /// The attention pair (docs/SEMANTICS.md, "Streamed attention"), on counts (<= 16, read as int8 where
    /// they stand for weights). Per head h and block of four queries i (eight on x86-64 hosts, their
    /// scores rows and a pair of blocks in the run's stack buffer, `Kernels.pairBlocks`): their head channels of
    /// q go into the block, the scores a[h][i][j] = sum over the head's channels c of q[i][c] k[j][c] fire
    /// into a scores row per query (counts, a neuron per head), the rows go into the block (over the q
    /// rows), and the values o[i][c] = sum_j a[h][i][j] v[j][c] fire against the head's rows of v, which is
    /// channel-major ([D][N]: a value channel's N counts in a row, read as int8 weights), into the output
    /// (a neuron per channel), which may be q's buffer: the block's q rows are in the block by then. On
    /// the spiking count path the values neurons write prefix trains, and `synapticOps` adds the values'
    /// synaptic operations per block of scores (`Kernels.pairSynapticOps`). The values' statistics go to
    /// `valuesStats`. Scratch: docs/FORMAT.md, "Kernel scratch".
    @inline(never) @usableFromInline mutating func attentionFused(_ sc: OpRecord, _ va: OpRecord, _ s1: inout OpStats,
                                                                 synapticOps: Bool = false) {
        let n = sc.inDims.d0, d = sc.inDims.d1
        let hd = Int(csd_quot(Int32(truncatingIfNeeded: d), Int32(sc.heads)))
        let view = AttentionView(q: counts(sc.input(plan)), qStride: d, qHead: hd, firstQuery: 0,
                                 k: UnsafeRawPointer(counts(sc.input2(plan))).assumingMemoryBound(to: Int8.self), kStride: d, kHead: hd,
                                 v: UnsafeRawPointer(counts(va.input2(plan))).assumingMemoryBound(to: Int8.self), vHead: hd &* n,
                                 heads: (0, Int(sc.heads)), queries: (0, n))
        attentionFused(sc, va, view, &s1, synapticOps: synapticOps, keyStats: true)
    }

    /// The pair over `view`'s heads and queries: the whole pair, or an attention unit's head and band of
    /// queries (docs/SEMANTICS.md, "Attention units"), whose q, k and v buffers hold one head. `keyStats`:
    /// on x86-64 hosts the values' synaptic operations may take v's side once per head (the whole pair).
    @inline(never) @usableFromInline mutating func attentionFused(_ sc: OpRecord, _ va: OpRecord, _ view: AttentionView, _ s1: inout OpStats,
                                                   synapticOps: Bool, keyStats: Bool) {
        let n = sc.inDims.d0
        #if arch(x86_64)
        let hd = Int(csd_quot(Int32(truncatingIfNeeded: sc.inDims.d1), Int32(sc.heads)))
        let scoresBytes = (8 &* n &+ 15) & ~15  // eight queries' scores rows, then a pair of blocks
        if let pair = pairBlocks, Kernels.pairFits(k: max(hd, n), after: scoresBytes) {
            // then the values' synaptic operations' per-key stats of a head's queries (`addCountStatsX86`), if they fit
            let statsAt = scoresBytes &+ 2 &* Kernels.blockBytes(k: max(hd, n))
            let stats = synapticOps && keyStats && statsAt &+ 8 &* n <= Kernels.pairBlockBytes
                ? (pair + statsAt).assumingMemoryBound(to: UInt32.self) : nil
            attentionRows(sc, va, view, &s1, synapticOps: synapticOps, scores: pair.assumingMemoryBound(to: UInt8.self),
                          block: pair + scoresBytes, step: 8, keyStats: stats)
            return
        }
        #endif
        attentionRows(sc, va, view, &s1, synapticOps: synapticOps, scores: UnsafeMutableRawPointer(scratch).assumingMemoryBound(to: UInt8.self),
                      block: UnsafeMutableRawPointer(scratch) + ((4 &* n &+ 15) & ~15), step: 4, keyStats: nil)
    }

    /// `attentionFused` with `step` queries (4, or 8: a pair of blocks) at a time: their scores rows at
    /// `scores` (N bytes each), their block at `block`. With `keyStats` (x86-64 hosts, the count path:
    /// 2N uint32) the values' synaptic operations take v's side once per head
    /// (`Kernels.addCountStatsX86`), else once per block of queries.
    @inline(__always) mutating func attentionRows(_ sc: OpRecord, _ va: OpRecord, _ view: AttentionView, _ s1: inout OpStats,
                                                  synapticOps: Bool, scores: UnsafeMutablePointer<UInt8>,
                                                  block: UnsafeMutableRawPointer, step: Int, keyStats: UnsafeMutablePointer<UInt32>?) {
        let n = sc.inDims.d0, d = sc.inDims.d1
        let hd = Int(csd_quot(Int32(truncatingIfNeeded: d), Int32(sc.heads)))
        let output = counts(va.output(plan))
        let order = Kernels.neuronOrder(pixels: false)
        let scoresTheta = int32s(sc.thresholds), scoresBeta = int32s(sc.biases)
        let valuesTheta = int32s(va.thresholds), valuesBeta = int32s(va.biases)
        var h = view.heads.0
        while h < view.heads.1 {
            let c0 = h &* hd, vRows = view.v + h &* view.vHead  // the head's value channels, N counts each
            let q = view.q + h &* view.qHead, k = view.k + h &* view.kHead
            #if arch(x86_64)
            keyStats?.update(repeating: 0, count: 2 &* n)
            #endif
            var i0 = view.queries.0
            while i0 < view.queries.1 {
                let rows = min(step, view.queries.1 &- i0)
                var stage = 0  // 0: the scores of the block's queries; 1: their values (one call site: code size)
                while stage < 2 {
                    let first = stage == 0
                    if first {
                        Kernels.putRowBlocks(block, q + (i0 &- view.firstQuery) &* view.qStride, rowStride: view.qStride, rows: rows,
                                             k: hd, order: order)
                    } else {
                        Kernels.putRowBlocks(block, scores, rowStride: n, rows: rows, k: n, order: order)
                    }
                    var sink = first
                        ? NeuronSink(out: scores, thresholds: scoresTheta + h, biases: scoresBeta + h, outputStep: 1,
                                     rowStep: n, paramStep: 0, paramRowStep: 0, shift: Int32(sc.shift), levels: levels, rows: rows,
                                     output: .counts)
                        : NeuronSink(out: output + (i0 &* d &+ c0), thresholds: valuesTheta + c0, biases: valuesBeta + c0,
                                     outputStep: 1, rowStep: d, paramStep: 1, paramRowStep: 0, shift: Int32(va.shift),
                                     levels: levels, rows: rows, output: neuronOutput)
                    Kernels.blockDotNeurons(first ? k : vRows, wstride: first ? view.kStride : n, UnsafeRawPointer(block),
                                            k: first ? hd : n, outputs: first ? n : hd, order: order, &sink)
                    if first {
                        s1.spikes &+= sink.spikes
                    } else {
                        valuesStats.spikes &+= sink.spikes
                    }
                    stage &+= 1
                }
                if synapticOps {  // a group per key j: a[h][i][j] (the block's rows) against v[j][c], c in head h
                    #if arch(x86_64)
                    if let stats = keyStats {
                        Kernels.addCountStatsX86(scores, groups: n, sx: n, nx: rows, sums: stats, spiking: stats + n)
                        i0 &+= step
                        continue
                    }
                    #endif
                    valuesStats.synapticOps &+= Kernels.pairSynapticOps(scores, UnsafeRawPointer(vRows).assumingMemoryBound(to: UInt8.self),
                                                                        groups: n, sx: n, nx: rows, sy: n, ny: hd)
                }
                i0 &+= step
            }
            #if arch(x86_64)
            if let stats = keyStats {  // the head's queries against v's head rows
                valuesStats.synapticOps &+= Kernels.pairSynapticOpsFromStatsX86(stats, stats + n,
                                                                                UnsafeRawPointer(vRows).assumingMemoryBound(to: UInt8.self),
                                                                                groups: n, sy: n, ny: hd)
            }
            #endif
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
