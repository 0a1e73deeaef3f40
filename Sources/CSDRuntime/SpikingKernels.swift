import CSDFormat
import CSDKernels

/// Spiking execution (docs/SEMANTICS.md section 3, "spiking" column): every
/// neuron is a DIF neuron over T steps with delay D; after the encoding layer
/// every synaptic event is an addition selected by a spike. At D >= T with
/// uint8 trains the ops with neuron outputs take the count path (`runCounts`,
/// SEMANTICS.md "Prefix trains"); otherwise, and for stream writers, conv and
/// linear are event-driven (each listed input spike adds a weight column to
/// that step's currents of every output channel), then every channel fires;
/// the attention ops pair listed trains per output. Inner loops: CSDKernels (C).
extension Context {
    @inline(never) @usableFromInline mutating func runSpiking(_ op: OpRecord, index: Int, _ s: inout OpStats) {
        if op.has(OpFlag.inputPixels) || (countPath && !op.writesStream && op.kind != .classifier) {
            runCounts(op, index: index, &s)
            return
        }
        switch op.kind {
        case .conv3x3?: eventsSpiking(op, conv: true, &s)
        case .linear?: eventsSpiking(op, conv: false, &s)
        case .maxPool?: maxPool(op, events: true, &s)  // m_t = max_i C_i(t) - max_i C_i(t-1) per window
        case .streamNeuron?: streamNeuronSpiking(op, &s)
        case .attentionScores?: attentionSpiking(op, values: false, &s)
        case .attentionValues?: attentionSpiking(op, values: true, &s)
        case .classifier?: s.synapticOps = classifier(op, trains: true) &* UInt32(truncatingIfNeeded: op.outDims.d0)
        case nil: break
        }
    }

    /// The count path (D >= T, uint8 trains; docs/SEMANTICS.md, "Prefix trains"): every train in the arena
    /// is (1 << count) - 1, and a neuron sees only its integrated input, the fused accumulation of the
    /// counts (a stream neuron: the sum of its T steps). The op's input trains become counts in place, the
    /// fused kernels run on the spiking plan's buffers and their neuron sinks (and max-pool) write trains,
    /// and an input becomes trains again only if a later op reads it as trains (`csd_read_later`); the
    /// synaptic operations are those the event path counts, computed from the counts (csd_window_sum,
    /// csd_pair_synops). Also the encoding conv at every delay (its current arrives at t = 0).
    @inline(never) @usableFromInline mutating func runCounts(_ op: OpRecord, index: Int, _ s: inout OpStats) {
        let countsIn = op.inputUse.kind == .counts && op.kind != .maxPool  // not pixels or the stream; max-pool runs on trains
        let in1 = counts(op.input(.spiking)), n1 = Int32(truncatingIfNeeded: op.inputUse.dims.count)
        let off1 = op.input(.spiking)  // kept as counts by the op before (countsAt) or made counts here
        // a second input that is the first one (a valid plan may pair a value with itself) is converted once
        let in2 = counts(op.input2(.spiking))
        let n2 = op.input2(.spiking) == off1 ? 0 : Int32(truncatingIfNeeded: op.input2Use?.dims.count ?? 0)
        let total = !countsIn ? 0 : off1 == countsAt ? countsSum : csd_trains_to_counts(in1, n1)
        _ = csd_trains_to_counts(in2, n2)
        if op.has(OpFlag.streamSet) {  // the encoding conv writing the stream: its current is all at t = 0
            stream(op.output(.spiking)).update(repeating: 0, count: op.outDims.count &* steps)
        }
        runFused(op, &s)
        if wideTrains, let out = op.outputUse, out.kind == .counts {  // counts written as uint8: widen to uint16 trains
            csd_counts_to_trains16(counts(op.output(.spiking)), Int32(truncatingIfNeeded: out.dims.count))
        }
        let n0 = Int32(truncatingIfNeeded: op.inDims.d0), d1 = Int32(truncatingIfNeeded: op.inDims.d1)
        let d2 = Int32(truncatingIfNeeded: op.inDims.d2)
        var synops: UInt32 = 0
        switch op.kind {
        case .conv3x3?:
            if countsIn {
                synops = csd_window_sum(in1, Int32(truncatingIfNeeded: op.inDims.d0), d1, d2) &* UInt32(truncatingIfNeeded: op.outDims.d0)
            }
        case .linear?: synops = total &* UInt32(truncatingIfNeeded: op.outDims.d1)
        case .attentionScores?:  // a group per channel c: q[i][c] against k[j][c]
            synops = csd_pair_synops(in1, in2, 1, d1, 0, 1, d1, n0, 0, 1, d1, n0)
        case .attentionValues?:  // a group per head h and key j: a[h][i][j] against v[j][c], c in head h
            let n = Int32(truncatingIfNeeded: op.outDims.d0), d = Int32(truncatingIfNeeded: op.outDims.d1), heads = Int32(op.heads)
            let hd = csd_quot(d, heads)
            synops = csd_pair_synops(in1, in2, heads, n, n &* n, 1, n, n, hd, d, 1, hd)
        default: break
        }
        // inputs become trains again if a later op reads them as trains; a dead value stays as counts, and
        // so does one whose next reader takes it as counts (q, k and v share their input)
        let next = Int32(truncatingIfNeeded: index &+ 1), ops = Int32(truncatingIfNeeded: opCount)
        if countsIn {
            let later = csd_read_later(records, next, ops, UInt32(truncatingIfNeeded: off1))
            if later == 1 { csd_counts_to_trains(in1, n1) }
            countsAt = later == 2 ? off1 : -1
            countsSum = total
        }
        if n2 > 0 && csd_read_later(records, next, ops, UInt32(truncatingIfNeeded: op.input2(.spiking))) != 0 {
            csd_counts_to_trains(in2, n2)
        }
        s.synapticOps = synops
        if !op.has(OpFlag.inputPixels) { s.macs = 0 }
    }

    /// D >= T: every spike train in the arena is a prefix train (spikes at steps 0 ..< count; docs/SEMANTICS.md,
    /// "Prefix trains"), so conv and linear add each input's column once, at its last spike, and a suffix sum
    /// gives the step currents.
    @inlinable var prefixTrains: Bool { delay >= steps }

    /// Delivers the currents of every output channel of one position or token (cur[t * outputs + j]):
    /// the neurons fire into trains[neuronBase + j * neuronStep], or the stream gets them at
    /// streamBase + j (the bias at t = 0).
    @inlinable func deliverAll(_ op: OpRecord, outputs: Int, neuronBase: Int, neuronStep: Int, streamBase: Int,
                               _ cur: UnsafePointer<Int32>, _ s: inout OpStats) {
        let n32 = Int32(truncatingIfNeeded: outputs), t32 = Int32(truncatingIfNeeded: steps)
        if op.writesStream {
            let biases = int32s(op.biases)
            csd_stream_channels(UnsafeMutablePointer(mutating: cur), n32, t32, stream(op.output(.spiking)), Int32(truncatingIfNeeded: streamBase),
                                op.has(OpFlag.tokenBias) ? biases + streamBase : biases, op.has(OpFlag.streamSet) ? 1 : 0,
                                prefixTrains ? 1 : 0)
        } else {
            if prefixTrains { csd_suffix_steps(UnsafeMutablePointer(mutating: cur), t32, n32) }
            s.spikes &+= csd_fire_channels(cur, n32, t32, Int32(truncatingIfNeeded: delay), Int32(op.shift),
                                           int32s(op.thresholds), int32s(op.biases), levels, arena + op.output(.spiking),
                                           wideTrains ? 1 : 0, Int32(truncatingIfNeeded: neuronBase),
                                           Int32(truncatingIfNeeded: neuronStep), 1, n32)
        }
    }

    /// Conv / linear spiking scratch: the active-input list (16 bytes per four inputs), then the
    /// currents of every output channel at every step, [T][outputs] int32 (docs/FORMAT.md).
    @inlinable var activeList: UnsafeMutablePointer<UInt32> { scratch }
    @inlinable func stepCurrents(fanIn: Int, outputs: Int) -> UnsafeMutablePointer<Int32> {
        let cur = UnsafeMutableRawPointer(scratch + ((fanIn &+ 3) >> 2) &* 4).assumingMemoryBound(to: Int32.self)
        cur.update(repeating: 0, count: steps &* outputs)
        return cur
    }

    /// Conv and linear, event-driven: per output position (conv: its 3x3 receptive field, zero padding;
    /// the encoding conv on pixels runs on the count path at every delay, its whole current arriving at
    /// t = 0) or token (linear), the spiking inputs are listed once, and each spike adds the weight column
    /// of every output channel to that step's currents; then the channels fire, or the stream gets them.
    @inline(never) @usableFromInline mutating func eventsSpiking(_ op: OpRecord, conv: Bool, _ s: inout OpStats) {
        let weights = self.weights(op), input = arena + op.input(.spiking), wide: Int32 = wideTrains ? 1 : 0
        let cin = op.inDims.d0, h = op.inDims.d1, w = op.inDims.d2
        let positions = conv ? h &* w : cin, fanIn = conv ? cin &* 9 : h, outputs = conv ? op.outDims.d0 : op.outDims.d1
        let k32 = Int32(truncatingIfNeeded: fanIn), n32 = Int32(truncatingIfNeeded: outputs), list = activeList
        for pos in 0..<positions {
            let cur = stepCurrents(fanIn: fanIn, outputs: outputs)
            let active = conv
                ? csd_list_patch(input, wide, Int32(truncatingIfNeeded: cin), Int32(truncatingIfNeeded: h),
                                 Int32(truncatingIfNeeded: w), Int32(truncatingIfNeeded: pos), list)
                : csd_list_row(input + pos &* fanIn &* (wideTrains ? 2 : 1), wide, k32, list)
            s.synapticOps &+= csd_event_spikes(list, active, weights.base, weights.wide ? 1 : 0, k32, n32, cur, prefixTrains ? 1 : 0)
            deliverAll(op, outputs: outputs, neuronBase: conv ? pos : pos &* outputs, neuronStep: conv ? positions : 1,
                       streamBase: pos &* outputs, cur, &s)
        }
        s.neurons = op.writesStream ? 0 : UInt32(truncatingIfNeeded: outputs &* positions)
    }

    /// I[t] = X[n][c][t]: the stream's current at each step; one call per token fires its channels.
    @inlinable mutating func streamNeuronSpiking(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, d = op.inDims.d1, d32 = Int32(truncatingIfNeeded: d), t32 = Int32(truncatingIfNeeded: steps)
        let x = stream(op.input(.spiking)), output = arena + op.output(.spiking)
        for t in 0..<n {
            s.spikes &+= csd_fire_channels(x + t &* d &* steps, d32, t32, Int32(truncatingIfNeeded: delay), Int32(op.shift),
                                           int32s(op.thresholds), int32s(op.biases), levels, output, wideTrains ? 1 : 0,
                                           Int32(truncatingIfNeeded: t &* d), 1, t32, 1)
        }
        s.neurons = UInt32(truncatingIfNeeded: n &* d)
    }

    /// Attention ops: the temporal decomposition of products of spike trains (C: `csd_attention_events`,
    /// `csd_list_products`): I[t] += a_t * B_t + A_{t-1} * b_t (capitals: running counts). Per query and head,
    /// the query's channels (scores) or the attention row's keys (values) are listed once, and every output
    /// walks only that list.
    @inline(never) @usableFromInline mutating func attentionSpiking(_ op: OpRecord, values: Bool, _ s: inout OpStats) {
        let tokens = values ? op.outDims.d0 : op.inDims.d0, d = values ? op.outDims.d1 : op.inDims.d1
        s.spikes = csd_attention_events(values ? 1 : 0, arena + op.input(.spiking), arena + op.input2(.spiking),
                                        arena + op.output(.spiking), wideTrains ? 1 : 0, Int32(truncatingIfNeeded: tokens),
                                        Int32(truncatingIfNeeded: d), Int32(op.heads), int32s(op.thresholds), int32s(op.biases),
                                        Int32(op.shift), levels, Int32(truncatingIfNeeded: steps), Int32(truncatingIfNeeded: delay),
                                        scratch, &s.synapticOps)
        s.neurons = UInt32(truncatingIfNeeded: op.outDims.count)
    }
}
