import CSDFormat
import CSDMachine

/// Spiking execution (docs/SEMANTICS.md section 3, "spiking" column): the driver that tiles each op
/// into the kernels (Kernels/). Every neuron is a DIF neuron over T steps with delay D; after the
/// encoding layer every synaptic event is an addition selected by a spike. At D >= T with uint8
/// trains every op but the classifier takes the count path (`runCounts`, and `attentionCounts` for
/// the attention pair; SEMANTICS.md "Prefix trains"), which computes the same trains, statistics and
/// logits from spike counts (it multiplies); otherwise conv and linear are event-driven (each listed
/// input spike adds a weight column to that step's currents of every output channel), then every
/// channel fires, or the stream gets the step currents; the attention pair, run at its first record,
/// pairs listed trains per output, a query's scores row through the scratch into its values.
extension Context {
    @inline(never) @usableFromInline mutating func runSpiking(_ op: OpRecord, index: Int, _ s: inout OpStats) {
        if op.has(OpFlag.inputPixels) || (countPath && op.kind != .classifier && op.kind != .attentionScores
                                          && op.kind != .attentionValues) {
            runCounts(op, index: index, &s)
            return
        }
        switch op.kind {
        case .conv3x3?: eventsSpiking(op, conv: true, &s)
        case .linear?: eventsSpiking(op, conv: false, &s)
        case .maxPool?: maxPool(op, .spikeTrains, &s)  // m_t = max_i C_i(t) - max_i C_i(t-1) per window
        case .streamNeuron?: streamNeuronSpiking(op, &s)
        case .attentionScores?: attentionSpiking(op, image.op(index &+ 1), index: index, &s)  // the pair
        case .attentionValues?: takeValuesStats(&s)
        case .classifier?: s.synapticOps = classifier(op, .spikeTrains) &* UInt32(truncatingIfNeeded: op.outDims.d0)
        case nil: break
        }
    }

    /// The count path (D >= T, uint8 trains; docs/SEMANTICS.md, "Prefix trains"): every train in the arena
    /// is (1 << count) - 1, and a neuron sees only its integrated input, the fused accumulation of the
    /// counts (a stream neuron: the sum of its T steps). The count path runs in the fused plan's buffers
    /// (`plan`; docs/FORMAT.md, "Arena"): the same values at the same sizes (T <= 8: a prefix train is a
    /// byte, like a count), and the stream [N][D] holds each value's sum over the steps. The op's input
    /// trains become counts in place, the fused driver runs and its neuron sinks (and max-pool) write
    /// trains, and an input becomes trains again only if a later op reads it as trains
    /// (`nextSpikingUse`); the synaptic operations are those the event path counts, computed from the
    /// counts (`windowSum`; the attention pair has its own, `attentionCounts`). Only the attention pair
    /// has a second input, so every op here has one. Also the encoding conv at every delay (its current
    /// arrives at t = 0), in the spiking plan's buffers off the count path: it writes step 0 of the
    /// [N][D][T] stream, whose other steps it clears.
    @inline(never) @usableFromInline mutating func runCounts(_ op: OpRecord, index: Int, _ s: inout OpStats) {
        let countsIn = op.inputUse.kind == .counts && op.kind != .maxPool  // not pixels or the stream; max-pool runs on trains
        let off1 = op.input(plan)  // kept as counts by the op before (countsAt) or made counts here
        let in1 = counts(off1), n1 = op.inputUse.dims.count
        let total = countsIn ? inputCounts(off1, count: n1) : 0
        if op.has(OpFlag.streamSet) && plan == .spiking {  // [N][D][T]: steps 1 ..< T stay 0
            stream(op.output(plan)).update(repeating: 0, count: op.outDims.count &* steps)
        }
        runFused(op, index: index, &s)
        if wideTrains, let out = op.outputUse, out.kind == .counts || out.kind == .channelMajor {  // counts written as uint8: widen to uint16 trains
            Kernels.countsToTrains16(arena + op.output(plan), count: out.dims.count)
        }
        let n0 = op.inDims.d0, d1 = op.inDims.d1
        var synops: UInt32 = 0
        switch op.kind {
        case .conv3x3?:
            if countsIn {
                synops = windowSum(in1, c: n0, h: d1, w: op.inDims.d2) &* UInt32(truncatingIfNeeded: op.outDims.d0)
            }
        case .linear?: synops = total &* UInt32(truncatingIfNeeded: op.outDims.d1)
        default: break
        }
        // inputs become trains again if a later op reads them as trains; a dead value stays as counts, and
        // so does one whose next reader takes it as counts (q, k and v share their input); an input the op
        // wrote over (docs/FORMAT.md, "In place") holds its output's trains
        if countsIn && op.output(plan) == off1 {
            countsAt = -1
        } else if countsIn {
            releaseInput(off1, count: n1, total: total, from: index &+ 1)
        }
        s.synapticOps = synops
        if !op.has(OpFlag.inputPixels) { s.macs = 0 }
    }

    /// The count path: an op's input at `offset` (`count` trains) as counts, kept by the op before (`countsAt`)
    /// or converted in place. Returns the sum of the counts.
    @inline(never) @usableFromInline func inputCounts(_ offset: Int, count: Int) -> UInt32 {
        offset == countsAt ? countsSum : Kernels.trainsToCounts(counts(offset), count: count)
    }

    /// The count path after an op that read `offset` as counts (their sum `total`): trains again if an op from
    /// `next` on reads them as trains, kept as counts (`countsAt`) if the next reader takes counts.
    @inline(never) @usableFromInline mutating func releaseInput(_ offset: Int, count: Int, total: UInt32, from next: Int) {
        let use = image.nextSpikingUse(ofValueAt: offset, from: next, plan: plan)
        if use == .trains { Kernels.countsToTrains(counts(offset), count: count) }
        countsAt = use == .counts ? offset : -1
        countsSum = total
    }

    /// `Kernels.windowSum`; on x86-64 hosts `windowSumX86` in the run's stack buffer when the map fits it.
    @inline(never) @usableFromInline func windowSum(_ p: UnsafePointer<UInt8>, c: Int, h: Int, w: Int) -> UInt32 {
        #if arch(x86_64)
        if let buffer = pairBlocks, Kernels.windowSumFitsX86(c: c, h: h, w: w, bytes: Kernels.pairBlockBytes) {
            return Kernels.windowSumX86(p, c: c, h: h, w: w, buffer: buffer)
        }
        #endif
        return Kernels.windowSum(p, c: c, h: h, w: w)
    }

    /// D >= T: every spike train in the arena is a prefix train (spikes at steps 0 ..< count; docs/SEMANTICS.md,
    /// "Prefix trains"), so conv and linear add each input's column once, at its last spike, and a suffix sum
    /// gives the step currents.
    @inlinable var inputTrains: InputTrains { delay >= steps ? .prefix : .any }

    /// Delivers the currents of every output channel of one position or token (cur[t * outputs + j]):
    /// the neurons fire into trains[neuronBase + j * neuronStep], or the stream gets them at
    /// streamBase + j (the bias at t = 0).
    @inlinable func deliverAll(_ op: OpRecord, outputs: Int, neuronBase: Int, neuronStep: Int, streamBase: Int,
                               _ cur: UnsafeMutablePointer<Int32>, _ s: inout OpStats) {
        let prefix = inputTrains == .prefix
        if op.writesStream {
            let biases = int32s(op.biases)
            Kernels.streamChannels(cur, outputs: outputs, steps: steps, stream(op.output(.spiking)), base: streamBase,
                                   biases: op.has(OpFlag.tokenBias) ? biases + streamBase : biases,
                                   write: op.has(OpFlag.streamSet) ? .set : .add, prefix: prefix, shift: Int32(op.shift))
        } else {
            if prefix { Kernels.suffixSteps(cur, steps: steps, outputs: outputs) }
            s.spikes &+= Kernels.fireChannels(cur, outputs: outputs, steps: steps, delay: delay, shift: Int32(op.shift),
                                              thresholds: int32s(op.thresholds), biases: int32s(op.biases), levels: levels,
                                              trains: arena + op.output(.spiking), width: trainWidth, base: neuronBase,
                                              step: neuronStep, channelStride: 1, stepStride: outputs)
        }
    }

    /// Conv / linear spiking scratch: the active-input list (16 bytes per four inputs), then the
    /// currents of every output channel at every step, [T][outputs] int32 (docs/FORMAT.md).
    @inlinable var activeList: UnsafeMutablePointer<UInt32> { scratch }
    @inlinable func stepCurrents(fanIn: Int, outputs: Int) -> UnsafeMutablePointer<Int32> {
        let cur = UnsafeMutableRawPointer(scratch + ((fanIn &+ 3) &>> 2) &* 4).assumingMemoryBound(to: Int32.self)
        cur.update(repeating: 0, count: steps &* outputs)
        return cur
    }

    /// Conv and linear, event-driven: per output position (conv: its 3x3 receptive field, zero padding;
    /// the encoding conv on pixels runs on the count path at every delay, its whole current arriving at
    /// t = 0) or token (linear), the spiking inputs are listed once, and each spike adds the weight column
    /// of every output channel to that step's currents; then the channels fire, or the stream gets them.
    @inline(never) @usableFromInline mutating func eventsSpiking(_ op: OpRecord, conv: Bool, _ s: inout OpStats) {
        let input = arena + op.input(.spiking), weights = data + Int(op.weights)
        let weightWidth: WeightWidth = op.writesStream ? .int16 : .int8
        let cin = op.inDims.d0, h = op.inDims.d1, w = op.inDims.d2
        let positions = conv ? h &* w : cin, fanIn = conv ? cin &* 9 : h, outputs = conv ? op.outDims.d0 : op.outDims.d1
        let list = activeList
        var pos = 0
        while pos < positions {
            let cur = stepCurrents(fanIn: fanIn, outputs: outputs)
            let active = conv
                ? Kernels.listPatch(input, width: trainWidth, cin: cin, h: h, w: w, pos: pos, list)
                : Kernels.listRow(input + pos &* fanIn &* trainWidth.bytes, width: trainWidth, count: fanIn, list)
            s.synapticOps &+= Kernels.eventSynapticOps(list, count: active, weights: weights, width: weightWidth, wstride: fanIn,
                                                       outputs: outputs, cur, trains: inputTrains)
            let major = conv || op.has(OpFlag.channelMajor)  // [C][positions]: a conv's output, a CHANNEL_MAJOR linear's
            deliverAll(op, outputs: outputs, neuronBase: major ? pos : pos &* outputs, neuronStep: major ? positions : 1,
                       streamBase: pos &* outputs, cur, &s)
            pos &+= 1
        }
        s.neurons = op.writesStream ? 0 : UInt32(truncatingIfNeeded: outputs &* positions)
    }

    /// I[t] = X[n][c][t]: the stream's current at each step; per token, its int16 [D][T] steps widened
    /// into the scratch (docs/FORMAT.md, "Kernel scratch"), then one call fires its channels.
    @inlinable mutating func streamNeuronSpiking(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, d = op.inDims.d1, values = d &* steps
        let x = stream(op.input(.spiking)), output = arena + op.output(.spiking)
        let wide = UnsafeMutableRawPointer(scratch).assumingMemoryBound(to: Int32.self)
        var t = 0
        while t < n {
            let token = x + t &* values
            var i = 0
            while i < values {
                wide[i] = Int32(token[i])
                i &+= 1
            }
            s.spikes &+= Kernels.fireChannels(wide, outputs: d, steps: steps, delay: delay, shift: Int32(op.shift),
                                              thresholds: int32s(op.thresholds), biases: int32s(op.biases), levels: levels,
                                              trains: output, width: trainWidth, base: t &* d, step: 1, channelStride: steps,
                                              stepStride: 1)
            t &+= 1
        }
        s.neurons = UInt32(truncatingIfNeeded: n &* d)
    }

    /// The attention pair in spiking mode (docs/SEMANTICS.md, "Streamed attention"): on the count path
    /// (`attentionCounts`), else the temporal decomposition of products of spike trains
    /// (`Kernels.attentionEvents`): I[t] += a_t * B_t + A_{t-1} * b_t (capitals: running counts), per query
    /// and head the scores row through the scratch into the values. The values' statistics go to `valuesStats`.
    @inline(never) @usableFromInline mutating func attentionSpiking(_ sc: OpRecord, _ va: OpRecord, index: Int,
                                                                   _ s1: inout OpStats) {
        if countPath {
            attentionCounts(sc, va, index: index, &s1)
            return
        }
        let spikes = Kernels.attentionEvents(q: arena + sc.input(.spiking), k: arena + sc.input2(.spiking),
                                             v: arena + va.input2(.spiking), arena + va.output(.spiking), width: trainWidth,
                                             tokens: sc.inDims.d0, width: sc.inDims.d1, heads: Int(sc.heads),
                                             scores: (int32s(sc.thresholds), int32s(sc.biases), Int32(sc.shift)),
                                             values: (int32s(va.thresholds), int32s(va.biases), Int32(va.shift)),
                                             levels: levels, steps: steps, delay: delay, scratch: scratch,
                                             scoresOps: &s1.synapticOps, valuesOps: &valuesStats.synapticOps)
        s1.spikes = spikes.0
        valuesStats.spikes = spikes.1
        s1.neurons = UInt32(truncatingIfNeeded: sc.outDims.count)
        valuesStats.neurons = UInt32(truncatingIfNeeded: va.outDims.count)
    }

    /// The attention pair on the count path (`runCounts` for two records): q, k and v become counts, the
    /// fused pair runs (values neurons writing prefix trains over q, or elsewhere), and k and v become
    /// trains again if a later op reads them. The scores' synaptic operations come from q and k before
    /// the run (it may overwrite q), the values' per block of scores.
    @inlinable mutating func attentionCounts(_ sc: OpRecord, _ va: OpRecord, index: Int, _ s1: inout OpStats) {
        let n = sc.inDims.d0, d = sc.inDims.d1, size = n &* d
        let offQ = sc.input(plan), offK = sc.input2(plan), offV = va.input2(plan)
        let q = counts(offQ), k = counts(offK), v = counts(offV)
        if offQ != countsAt { _ = Kernels.trainsToCounts(q, count: size) }
        if offK != offQ && offK != countsAt { _ = Kernels.trainsToCounts(k, count: size) }
        if offV != offQ && offV != offK && offV != countsAt { _ = Kernels.trainsToCounts(v, count: size) }
        countsAt = -1
        // a group per channel c: q[i][c] against k[j][c]
        s1.synapticOps = pairSynapticOps(q, k, groups: d, sx: d, nx: n, sy: d, ny: n)
        attentionFused(sc, va, &s1, synapticOps: true)
        s1.macs = 0
        valuesStats.macs = 0
        let next = index &+ 2, out = va.output(plan)
        restoreTrains(offQ, count: size, from: next, unless: out)
        if offK != offQ { restoreTrains(offK, count: size, from: next, unless: out) }
        if offV != offQ && offV != offK { restoreTrains(offV, count: size, from: next, unless: out) }
    }

    /// `Kernels.pairSynapticOps` in one place (the scores' operations of the pair and of an attention unit).
    @inline(never) @usableFromInline func pairSynapticOps(_ x: UnsafePointer<UInt8>, _ y: UnsafePointer<UInt8>, groups: Int, sx: Int,
                                                          nx: Int, sy: Int, ny: Int) -> UInt32 {
        Kernels.pairSynapticOps(x, y, groups: groups, sx: sx, nx: nx, sy: sy, ny: ny)
    }

    /// Counts at `offset` become trains again if an op from `next` on reads them, unless an op wrote over them.
    @inlinable func restoreTrains(_ offset: Int, count: Int, from next: Int, unless written: Int) {
        if offset != written && image.nextSpikingUse(ofValueAt: offset, from: next, plan: plan) != .none {
            Kernels.countsToTrains(counts(offset), count: count)
        }
    }
}
