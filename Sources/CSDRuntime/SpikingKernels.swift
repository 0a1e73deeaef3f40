import CSDFormat
import CSDKernels

/// Spiking execution (docs/SEMANTICS.md section 3, "spiking" column): every
/// neuron is a DIF neuron over T steps with delay D; after the encoding layer
/// every synaptic event is an addition selected by a spike. Conv and linear
/// are event-driven (each listed input spike adds a weight column to that
/// step's currents of every output channel), then every channel fires; the
/// attention ops pair listed trains per output. Inner loops: CSDKernels (C).
extension Context {
    @inlinable mutating func runSpiking(_ op: OpRecord, _ s: inout OpStats) {
        if op.has(OpFlag.inputPixels) || (countPath && !op.writesStream && op.kind != .streamNeuron) {
            runCounts(op, &s)
            return
        }
        switch op.kind {
        case .conv3x3?: convSpiking(op, weights(op), &s)
        case .linear?: linearSpiking(op, weights(op), &s)
        case .maxPool?: maxPoolSpiking(op, &s)
        case .streamNeuron?: streamNeuronSpiking(op, &s)
        case .attentionScores?: scoresSpiking(op, &s)
        case .attentionValues?: valuesSpiking(op, &s)
        case .classifier?: classifierSpiking(op, &s)
        case nil: break
        }
    }

    /// The count path (D >= T, uint8 trains; docs/SEMANTICS.md, "Prefix trains"): every train in the arena
    /// is (1 << count) - 1, and a neuron sees only its integrated input, the fused accumulation of the
    /// counts. The op's input trains become counts in place, the fused kernels run on the spiking plan's
    /// buffers and their neuron sinks (and max-pool) write trains, the inputs become trains again; the synaptic operations
    /// are those the event path counts, computed from the counts (csd_*_synops, csd_window_sum).
    @inline(never) @usableFromInline mutating func runCounts(_ op: OpRecord, _ s: inout OpStats) {
        let pixelsIn = op.has(OpFlag.inputPixels) || op.kind == .maxPool  // max-pool runs on the trains
        let in1 = counts(op.input(.spiking)), n1 = Int32(truncatingIfNeeded: op.inputUse.dims.count)
        let in2 = counts(op.input2(.spiking)), n2 = Int32(truncatingIfNeeded: op.input2Use?.dims.count ?? 0)
        let total = pixelsIn ? 0 : csd_trains_to_counts(in1, n1)
        _ = csd_trains_to_counts(in2, n2)
        if op.has(OpFlag.streamSet) {  // the encoding conv writing the stream: its current is all at t = 0
            let x = stream(op.output(.spiking)), n = op.outDims.count &* steps
            var i = 0
            while i < n { x[i] = 0; i &+= 1 }
        }
        runFused(op, &s)
        if wideTrains, let out = op.outputUse, out.kind == .counts {  // counts written as uint8: widen to uint16 trains
            csd_counts_to_trains16(counts(op.output(.spiking)), Int32(truncatingIfNeeded: out.dims.count))
        }
        let d1 = Int32(truncatingIfNeeded: op.inDims.d1), d2 = Int32(truncatingIfNeeded: op.inDims.d2)
        var synops: UInt32 = 0
        switch op.kind {
        case .conv3x3?:
            if !pixelsIn {
                synops = csd_window_sum(in1, Int32(truncatingIfNeeded: op.inDims.d0), d1, d2) &* UInt32(truncatingIfNeeded: op.outDims.d0)
            }
        case .linear?: synops = total &* UInt32(truncatingIfNeeded: op.outDims.d1)
        case .attentionScores?: synops = csd_scores_synops(in1, in2, Int32(truncatingIfNeeded: op.inDims.d0), d1)
        case .attentionValues?:
            synops = csd_values_synops(in1, in2, Int32(op.heads), Int32(truncatingIfNeeded: op.outDims.d0),
                                       Int32(truncatingIfNeeded: op.outDims.d1))
        case .classifier?: synops = total &* UInt32(truncatingIfNeeded: op.outDims.d0)
        default: break
        }
        if !pixelsIn { csd_counts_to_trains(in1, n1) }
        csd_counts_to_trains(in2, n2)
        s.synapticOps = synops
        if !op.has(OpFlag.inputPixels) { s.macs = 0 }
    }

    /// D >= T: every spike train in the arena is a prefix train (spikes at steps 0 ..< count; docs/SEMANTICS.md,
    /// "Prefix trains"), so conv and linear add each input's column once, at its last spike, and a suffix sum
    /// gives the step currents.
    @inlinable var prefixTrains: Bool { delay >= steps }

    /// The per-step currents of the neuron being computed (the arena's spiking scratch), set to 0.
    @inlinable func clearedCurrents() -> Currents {
        let current = UnsafeMutableRawPointer(scratch).assumingMemoryBound(to: Int32.self)
        var t = 0
        while t < steps { current[t] = 0; t &+= 1 }
        return current
    }

    /// Delivers the currents of every output channel of one position or token (cur[t * outputs + j]):
    /// the neurons fire into trains[neuronBase + j * neuronStep], or the stream gets them at
    /// streamBase + j (the bias at t = 0).
    @inlinable func deliverAll(_ op: OpRecord, outputs: Int, neuronBase: Int, neuronStep: Int, streamBase: Int,
                               _ cur: UnsafePointer<Int32>, _ s: inout OpStats) {
        let n32 = Int32(truncatingIfNeeded: outputs), t32 = Int32(truncatingIfNeeded: steps)
        if op.writesStream {
            let biases = int32s(op.biases)
            csd_stream_channels(cur, n32, t32, stream(op.output(.spiking)), Int32(truncatingIfNeeded: streamBase),
                                op.has(OpFlag.tokenBias) ? biases + streamBase : biases, op.has(OpFlag.streamSet) ? 1 : 0,
                                prefixTrains ? 1 : 0)
        } else {
            if prefixTrains { csd_suffix_steps(UnsafeMutablePointer(mutating: cur), t32, n32) }
            s.spikes &+= csd_fire_channels(cur, n32, t32, Int32(truncatingIfNeeded: delay), Int32(op.shift),
                                           int32s(op.thresholds), int32s(op.biases), levels, trains(op.output(.spiking)).base,
                                           wideTrains ? 1 : 0, Int32(truncatingIfNeeded: neuronBase),
                                           Int32(truncatingIfNeeded: neuronStep), 1, n32)
        }
    }

    /// Run the DIF neuron on the currents (current[t * stride]; shifted, the bias at t = 0), store the train.
    @inlinable func fire(_ nrn: Neuron, _ index: Int, _ out: Trains, _ current: UnsafePointer<Int32>, stride: Int = 1,
                         _ s: inout OpStats) {
        let train = csd_dif(current, Int32(truncatingIfNeeded: stride), Int32(truncatingIfNeeded: steps),
                            Int32(truncatingIfNeeded: delay), nrn.shift, nrn.bias, nrn.threshold, levels)
        out[index] = train
        s.spikes &+= (UInt32(truncatingIfNeeded: train.nonzeroBitCount))
    }

    /// Conv / linear spiking scratch: the active-input list (16 bytes per four inputs), then the
    /// currents of every output channel at every step, [T][outputs] int32 (docs/FORMAT.md).
    @inlinable var activeList: UnsafeMutablePointer<UInt32> { scratch }
    @inlinable func stepCurrents(fanIn: Int, outputs: Int) -> UnsafeMutablePointer<Int32> {
        let cur = UnsafeMutableRawPointer(scratch + ((fanIn &+ 3) >> 2) &* 4).assumingMemoryBound(to: Int32.self)
        var i = 0, n = steps &* outputs
        while i < n { cur[i] = 0; i &+= 1 }
        return cur
    }

    /// Event-driven: per output position, its receptive field's spiking inputs are listed once, and each
    /// spike adds the weight column of every output channel to that step's currents. (The encoding conv,
    /// on pixels, runs on the count path at every delay: its whole current arrives at t = 0.)
    @inlinable mutating func convSpiking(_ op: OpRecord, _ weights: Weights, _ s: inout OpStats) {
        let cin = op.inDims.d0, h = op.inDims.d1, w = op.inDims.d2, cout = op.outDims.d0, fanIn = cin &* 9
        let input = trains(op.input(.spiking)), list = activeList
        for y in 0..<h {
            for x in 0..<w {
                let cur = stepCurrents(fanIn: fanIn, outputs: cout)
                let active = csd_list_patch(input.base, wideTrains ? 1 : 0, Int32(truncatingIfNeeded: cin),
                                            Int32(truncatingIfNeeded: h), Int32(truncatingIfNeeded: w),
                                            Int32(truncatingIfNeeded: y), Int32(truncatingIfNeeded: x), list)
                s.synapticOps &+= csd_event_spikes(list, active, weights.base, weights.wide ? 1 : 0,
                                                   Int32(truncatingIfNeeded: fanIn), Int32(truncatingIfNeeded: cout), cur,
                                                   prefixTrains ? 1 : 0)
                let pos = y &* w &+ x
                deliverAll(op, outputs: cout, neuronBase: pos, neuronStep: h &* w, streamBase: pos &* cout, cur, &s)
            }
        }
        s.neurons = op.writesStream ? 0 : UInt32(truncatingIfNeeded: cout &* h &* w)
    }

    /// Event-driven, per token, as convSpiking.
    @inlinable mutating func linearSpiking(_ op: OpRecord, _ weights: Weights, _ s: inout OpStats) {
        let n = op.inDims.d0, din = op.inDims.d1, dout = op.outDims.d1
        let input = trains(op.input(.spiking)), list = activeList
        for t in 0..<n {
            let cur = stepCurrents(fanIn: din, outputs: dout)
            let active = csd_list_row(input.base + t &* din &* (wideTrains ? 2 : 1), wideTrains ? 1 : 0,
                                      Int32(truncatingIfNeeded: din), list)
            s.synapticOps &+= csd_event_spikes(list, active, weights.base, weights.wide ? 1 : 0,
                                               Int32(truncatingIfNeeded: din), Int32(truncatingIfNeeded: dout), cur,
                                               prefixTrains ? 1 : 0)
            deliverAll(op, outputs: dout, neuronBase: t &* dout, neuronStep: 1, streamBase: t &* dout, cur, &s)
        }
        s.neurons = op.writesStream ? 0 : UInt32(truncatingIfNeeded: n &* dout)
    }

    /// m_t = max_i C_i(t) - max_i C_i(t-1) over each window (0 or 1: a spike).
    @inlinable mutating func maxPoolSpiking(_ op: OpRecord, _ s: inout OpStats) {
        let c = op.inDims.d0, h = op.inDims.d1, w = op.inDims.d2, oh = op.outDims.d1, ow = op.outDims.d2
        let input = trains(op.input(.spiking)), output = trains(op.output(.spiking))
        for ch in 0..<c {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let win = PoolWindow(op, oy: oy, ox: ox, h: h, w: w)
                    let out = csd_pool_spikes(input.base + ch &* h &* w &* (wideTrains ? 2 : 1), wideTrains ? 1 : 0,
                                              Int32(truncatingIfNeeded: w), Int32(truncatingIfNeeded: win.y0),
                                              Int32(truncatingIfNeeded: win.y1), Int32(truncatingIfNeeded: win.x0),
                                              Int32(truncatingIfNeeded: win.x1), Int32(truncatingIfNeeded: steps))
                    output[(ch &* oh &+ oy) &* ow &+ ox] = out
                    s.spikes &+= (UInt32(truncatingIfNeeded: out.nonzeroBitCount))
                }
            }
        }
        s.neurons = UInt32(truncatingIfNeeded: c &* oh &* ow)
    }

    /// I[t] = X[n][c][t]: the stream's current at each step; one call per token fires its channels.
    @inlinable mutating func streamNeuronSpiking(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, d = op.inDims.d1, d32 = Int32(truncatingIfNeeded: d), t32 = Int32(truncatingIfNeeded: steps)
        let x = stream(op.input(.spiking)), output = trains(op.output(.spiking)).base
        for t in 0..<n {
            s.spikes &+= csd_fire_channels(x + t &* d &* steps, d32, t32, Int32(truncatingIfNeeded: delay), Int32(op.shift),
                                           int32s(op.thresholds), int32s(op.biases), levels, output, wideTrains ? 1 : 0,
                                           Int32(truncatingIfNeeded: t &* d), 1, t32, 1)
        }
        s.neurons = UInt32(truncatingIfNeeded: n &* d)
    }

    /// Attention ops: the temporal decomposition of products of spike trains (`csd_list_products`, C):
    /// I[t] += a_t * B_t + A_{t-1} * b_t (capitals: running counts).
    /// Attention spiking scratch: one neuron's 16 currents, then the active-input list.
    @inlinable var attentionList: UnsafeMutablePointer<UInt32> { scratch + 16 }

    /// Per query and head, q's spiking channels are listed once; every key walks only that list.
    @inlinable mutating func scoresSpiking(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, d = op.inDims.d1, heads = Int(op.heads), hd = d / heads
        let q = trains(op.input(.spiking)), k = trains(op.input2(.spiking)), output = trains(op.output(.spiking))
        let tb = wideTrains ? 2 : 1, wide: Int32 = wideTrains ? 1 : 0, list = attentionList
        for h in 0..<heads {
            let nrn = neuron(op, h)
            for i in 0..<n {
                let active = csd_list_row(q.base + (i &* d &+ h &* hd) &* tb, wide, Int32(truncatingIfNeeded: hd), list)
                for j in 0..<n {
                    let current = clearedCurrents()
                    s.synapticOps &+= csd_list_products(list, active, k.base + (j &* d &+ h &* hd) &* tb, 1, wide, current)
                    fire(nrn, (h &* n &+ i) &* n &+ j, output, current, &s)
                }
            }
        }
        s.neurons = UInt32(truncatingIfNeeded: heads &* n &* n)
    }

    /// Per query and head, the attention row's spiking keys are listed once; every channel walks only that list.
    @inlinable mutating func valuesSpiking(_ op: OpRecord, _ s: inout OpStats) {
        let heads = Int(op.heads), n = op.outDims.d0, d = op.outDims.d1, hd = d / heads
        let a = trains(op.input(.spiking)), v = trains(op.input2(.spiking)), output = trains(op.output(.spiking))
        let tb = wideTrains ? 2 : 1, wide: Int32 = wideTrains ? 1 : 0, list = attentionList
        for i in 0..<n {
            for h in 0..<heads {
                let active = csd_list_row(a.base + ((h &* n &+ i) &* n) &* tb, wide, Int32(truncatingIfNeeded: n), list)
                for c in (h &* hd)..<((h &+ 1) &* hd) {
                    let current = clearedCurrents()
                    s.synapticOps &+= csd_list_products(list, active, v.base + c &* tb, Int32(truncatingIfNeeded: d), wide, current)
                    fire(neuron(op, c), i &* d &+ c, output, current, &s)
                }
            }
        }
        s.neurons = UInt32(truncatingIfNeeded: n &* d)
    }

    /// Every input spike (n, c, t) adds column c of the weights to the logits.
    @inlinable mutating func classifierSpiking(_ op: OpRecord, _ s: inout OpStats) {
        let n = op.inDims.d0, d = op.inDims.d1, classes = op.outDims.d0
        let input = trains(op.input(.spiking)), weights = int8s(op.weights), biases = int32s(op.biases)
        for j in 0..<classes { logits[j] = biases[j] }
        for t in 0..<n {
            for c in 0..<d {
                var bits = input[t &* d &+ c]
                while bits != 0 {
                    for j in 0..<classes { logits[j] = logits[j] &+ Int32(weights[j &* d &+ c]) }
                    s.synapticOps &+= (UInt32(truncatingIfNeeded: classes))
                    bits &= bits &- 1
                }
            }
        }
    }
}
