import CSDFormat

/// The packer's bands (docs/FORMAT.md, "Bands"): every producer and consumer that qualify run band by band
/// in the fused plan, so the producer's output never exists whole there. Bands change no arithmetic; they
/// cost a call per band and save the output's other rows.
public enum Banding {
    /// Rows of a LINEAR producer's band: two blocks of four tokens (the kernels' block; a pair on x86-64).
    public static let tokenRows = 8

    /// Rows of a CONV3X3 producer's band for a map `w` wide: the fewest pairs of map rows (a pair per
    /// max-pool output row) whose positions are a multiple of 8, so that every band's positions fill
    /// whole blocks of four (and pairs of blocks on x86-64): 2 rows of a map 28 wide, 4 of one 14 wide.
    public static func mapRows(width w: Int) -> Int {
        var rows = 2
        while (rows * w) % 8 != 0 { rows += 2 }
        return rows
    }

    /// Sets the band of every qualifying producer: a conv (no stream) whose output only a 2x2 max-pool
    /// right after it reads, or a neuron linear (no stream, not channel-major) whose output only a linear
    /// right after it reads, not in place; only where a band is smaller than the output.
    public static func apply(_ c: inout Conversion) {
        var i = 0
        while i + 1 < c.ops.count {
            let p = c.ops[i], q = c.ops[i + 1]
            guard let out = p.output, q.input == out, c.values[out].last == i + 1, p.input2 == nil, q.input2 == nil,
                  !p.record.writesStream else { i += 1; continue }
            var band = 0
            if p.record.kind == .conv3x3, q.record.kind == .maxPool, q.record.pool == 2,
               p.record.outDims.d1 > mapRows(width: p.record.outDims.d2) {
                band = mapRows(width: p.record.outDims.d2)
            } else if p.record.kind == .linear, !p.record.has(OpFlag.channelMajor), q.record.kind == .linear,
                      q.output != q.input, p.record.outDims.d0 > tokenRows {
                band = tokenRows
            }
            guard band > 0 else { i += 1; continue }
            c.ops[i].record.band = UInt16(band)
            i += 2  // a unit is two ops: the consumer is no producer
        }
    }

    /// True when ops `i ..< i + 6` are an attention block as the converter writes it: a stream neuron, the v
    /// (channel-major), k and q linears reading its output, and the pair reading q, k and v.
    static func isAttentionBlock(_ c: Conversion, at i: Int) -> Bool {
        guard i + 5 < c.ops.count else { return false }
        let r = c.ops[i...i + 5].map(\.record), o = Array(c.ops[i...i + 5])
        guard r[0].kind == .streamNeuron, r[1].kind == .linear, r[1].flags == OpFlag.channelMajor, r[2].kind == .linear,
              r[2].flags == 0, r[3].kind == .linear, r[3].flags == 0, r[4].kind == .attentionScores, r[5].kind == .attentionValues,
              let u = o[0].output else { return false }
        return o[1].input == u && o[2].input == u && o[3].input == u && o[4].input == o[3].output && o[4].input2 == o[2].output
            && o[5].input2 == o[1].output
    }

    /// Makes every attention block an attention unit (docs/FORMAT.md, "Attention units"; `csdpack convert
    /// --low-ram`): the stream neuron and the q linear get a band of `tokenRows` tokens (all of them if fewer),
    /// the three linears the pair's heads.
    public static func applyAttentionUnits(_ c: inout Conversion) {
        var i = 0
        while i < c.ops.count {
            guard isAttentionBlock(c, at: i) else { i += 1; continue }
            let band = UInt16(min(tokenRows, c.ops[i].record.outDims.d0)), heads = c.ops[i + 4].record.heads
            c.ops[i].record.band = band
            c.ops[i + 3].record.band = band
            for j in i + 1...i + 3 { c.ops[j].record.heads = heads }
            i += 6
        }
    }

    /// The fused plan's values, and each op's (input, input2, output) value ids in it.
    public struct FusedValues {
        public var values: [PlannedValue]
        public var ids: [(input: Int?, input2: Int?, output: Int?)]
    }

    /// The values as the fused plan places them: a band producer's output at its band's size, and lifetimes
    /// that cover both records of a unit (the producer's inputs stay live while the consumer runs, the
    /// consumer's output is live while the producer does). In an attention unit every buffer at its size
    /// (u a band, v and k one head, q a band of one head) and live through the six records, the stream too;
    /// q and o, written in place in the spiking plan, get buffers of their own.
    public static func fusedValues(_ c: Conversion) -> FusedValues {
        var values = c.values
        var ids = c.ops.map { (input: $0.input, input2: $0.input2, output: $0.output) }
        for (i, op) in c.ops.enumerated() where op.record.band != 0 && op.record.kind != .streamNeuron && op.record.heads == 0 {
            if let out = op.output, let use = op.record.outputUse { values[out].use = use }
            for v in [op.input, op.input2].compactMap({ $0 }) { values[v].last = max(values[v].last, i + 1) }
            if let out = c.ops[i + 1].output { values[out].first = min(values[out].first, i) }
        }
        for a in c.ops.indices where c.ops[a].record.kind == .streamNeuron && c.ops[a].record.band != 0 {
            guard let stream = c.ops[a].input, let u = c.ops[a].output, let v = c.ops[a + 1].output, let k = c.ops[a + 2].output,
                  let oldO = c.ops[a + 5].output, let qUse = c.ops[a + 3].record.outputUse,
                  let oUse = c.ops[a + 5].record.outputUse else { continue }
            let end = a + 5, oLast = values[oldO].last, oldQ = c.ops[a + 3].output ?? u
            for x in [u, v, k] {
                if let use = c.ops[x == u ? a : x == v ? a + 1 : a + 2].record.outputUse { values[x].use = use }
                values[x].first = min(values[x].first, a)
                values[x].last = end
            }
            values[stream].last = max(values[stream].last, end)
            var q = oldQ, o = oldO
            if oldQ == u {  // q written over u in the spiking plan
                q = values.count
                values.append(PlannedValue(use: qUse, first: a, last: end))
                ids[a + 3].output = q
                ids[a + 4].input = q
            } else {
                values[q].use = qUse
                values[q].first = a
                values[q].last = end
            }
            if oldO == oldQ || oldO == u {  // o written over q in the spiking plan
                o = values.count
                values.append(PlannedValue(use: oUse, first: a, last: max(oLast, end)))
                ids[a + 5].output = o
                for j in (a + 6)..<c.ops.count {  // o's readers
                    if ids[j].input == oldO { ids[j].input = o }
                    if ids[j].input2 == oldO { ids[j].input2 = o }
                    if ids[j].output == oldO { ids[j].output = o }
                }
            } else {
                values[o].first = a
            }
        }
        return FusedValues(values: values, ids: ids)
    }
}
