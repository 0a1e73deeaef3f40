import CSDFormat
import CSDMachine

/// Attention units (docs/FORMAT.md, "Attention units"; docs/SEMANTICS.md, "Attention units"): in the fused
/// plan (fused mode, and the spiking count path) a stream neuron, the v, k and q linears and the attention
/// pair run head by head. Per head, u is computed from the stream a band of tokens at a time, and from it
/// the head's v and k of every token; then u again, and per band of queries the head's q and the pair into
/// o. The stream does not change while the unit runs, so every value is the one the six ops compute one
/// after the other.
extension Context {
    /// Runs the unit of ops `a ... a + 5` and hands each op's statistics to `observe`, in order.
    /// On the count path (`spiking` here) u is written as counts, the linears' prefix trains become counts
    /// before the pair reads them, the values neurons write prefix trains into o (as the next op reads
    /// them), and the synaptic operations come from the counts as `runCounts` and `attentionCounts` have them.
    @inline(never) @usableFromInline mutating func runAttentionUnit(index a: Int, _ observe: (Int, OpStats) -> Void) {
        let neuron = image.op(a), sc = image.op(a &+ 4), va = image.op(a &+ 5)
        let n = neuron.inDims.d0, d = neuron.inDims.d1, heads = Int(sc.heads), band = Int(neuron.band)
        let hd = Int(csd_quot(Int32(truncatingIfNeeded: d), Int32(sc.heads)))
        let vBuffer = counts(image.op(a &+ 1).output(plan)), kBuffer = counts(image.op(a &+ 2).output(plan))
        let qBuffer = counts(image.op(a &+ 3).output(plan))
        var stats = (OpStats(), OpStats(), OpStats(), OpStats(), OpStats(), OpStats())  // the neuron, v, k, q, the pair
        valuesStats = OpStats()
        var h = 0
        while h < heads {
            let view = AttentionView(q: qBuffer, qStride: hd, qHead: 0, firstQuery: 0,
                                     k: UnsafeRawPointer(kBuffer).assumingMemoryBound(to: Int8.self), kStride: hd, kHead: 0,
                                     v: UnsafeRawPointer(vBuffer).assumingMemoryBound(to: Int8.self), vHead: 0,
                                     heads: (h, h &+ 1), queries: (0, 0))
            var pass = 0
            while pass < 2 {  // 0: the head's v and k of every token; 1: its q and the pair, a band of queries at a time
                var t0 = 0
                while t0 < n {
                    let t1 = min(t0 &+ band, n), rows = t1 &- t0
                    let spikes = streamNeuronRows(neuron, tokens: (t0, t1), output: .counts)
                    if h == 0 && pass == 0 { stats.0.spikes &+= spikes }  // the neuron's statistics once
                    if pass == 0 {
                        headLinear(a &+ 1, tokens: (t0, t1), outputRow: 0, head: h, hd: hd, &stats.1)
                        headLinear(a &+ 2, tokens: (t0, t1), outputRow: 0, head: h, hd: hd, &stats.2)
                    } else {
                        headLinear(a &+ 3, tokens: (t0, t1), outputRow: t0, head: h, hd: hd, &stats.3)
                        if spiking {  // q's prefix trains as counts; the scores' synaptic operations, a group per channel
                            _ = Kernels.trainsToCounts(qBuffer, count: rows &* hd)
                            stats.4.synapticOps &+= pairSynapticOps(qBuffer, kBuffer, groups: hd, sx: hd, nx: rows, sy: hd, ny: n)
                        }
                        var bandView = view
                        bandView.firstQuery = t0
                        bandView.queries = (t0, t1)
                        scratch = (arena + sc.scratch(plan)).assumingMemoryBound(to: UInt32.self)
                        attentionFused(sc, va, bandView, &stats.4, synapticOps: spiking, keyStats: false)
                    }
                    t0 = t1
                }
                if pass == 0 && spiking {  // the head's v and k as counts for the pair
                    _ = Kernels.trainsToCounts(vBuffer, count: hd &* n)
                    _ = Kernels.trainsToCounts(kBuffer, count: n &* hd)
                }
                pass &+= 1
            }
            h &+= 1
        }
        stats.0.neurons = UInt32(truncatingIfNeeded: n &* d)
        stats.5 = valuesStats
        valuesStats = OpStats()
        if spiking {  // as `runCounts`: a linear's synaptic operations are its input's counts times its outputs
            let synapticOps = stats.0.spikes &* UInt32(truncatingIfNeeded: d)
            stats.1.synapticOps = synapticOps; stats.2.synapticOps = synapticOps; stats.3.synapticOps = synapticOps
            stats.1.macs = 0; stats.2.macs = 0; stats.3.macs = 0; stats.4.macs = 0; stats.5.macs = 0
            countsAt = -1
        }
        withUnsafeMutableBytes(of: &stats) { raw in
            let each = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: OpStats.self)
            var i = 0
            while i < 6 {
                let kind: OpKind = i == 0 ? .streamNeuron : i <= 3 ? .linear : i == 4 ? .attentionScores : .attentionValues
                each[i].kind = UInt32(kind.rawValue)  // the unit's kinds (validated)
                observe(a &+ i, each[i])
                i &+= 1
            }
        }
    }

    /// Head `head`'s output channels of the unit's linear `index` for tokens `tokens`, from the u band (its
    /// rows from `tokens.0`), in the op's scratch.
    @inline(never) @usableFromInline mutating func headLinear(_ index: Int, tokens: (Int, Int), outputRow: Int, head: Int, hd: Int,
                                               _ s: inout OpStats) {
        let op = image.op(index)
        scratch = (arena + op.scratch(plan)).assumingMemoryBound(to: UInt32.self)
        linearFused(op, tokens: tokens, inputRow: tokens.0, outputRow: outputRow, channels: (head &* hd, hd), &s)
    }
}
