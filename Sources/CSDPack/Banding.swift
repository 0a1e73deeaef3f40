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

    /// The values as the fused plan places them: a producer's output at its band's size, and lifetimes that
    /// cover both records of a unit (the producer's inputs stay live while the consumer runs, the consumer's
    /// output is live while the producer does).
    public static func fusedValues(_ c: Conversion) -> [PlannedValue] {
        var values = c.values
        for (i, op) in c.ops.enumerated() where op.record.band != 0 {
            if let out = op.output, let use = op.record.outputUse { values[out].use = use }
            for v in [op.input, op.input2].compactMap({ $0 }) { values[v].last = max(values[v].last, i + 1) }
            if let out = c.ops[i + 1].output { values[out].first = min(values[out].first, i) }
        }
        return values
    }
}
