import CSDFormat

/// One stream writer's int16 weights and biases, and the intervals the packer proves its stream values
/// lie in (docs/SEMANTICS.md section 4, step 5): per channel c, with inputs 0 ... M (M = L, or 255 for
/// pixels), the exact sum y = acc + bias and every running sum P[t] lie in
/// [M neg_c + min bias_c, M pos_c + max bias_c] (pos_c, neg_c: the sums of the row's positive and
/// negative weights; the biases as stored, with the rounding half), and a step current I[t] (t >= 1)
/// in [neg_c, pos_c].
struct StreamBounds {
    /// Weights [D][K] in the writers' fine unit.
    let w16: [Int16]
    /// Biases in the writers' fine unit, before the rounding half: [D], or [N][D] with a token bias.
    let biases: [Int64]
    /// Per channel: the sums of the row's positive and negative weights, the smallest and largest bias.
    let pos: [Int64], neg: [Int64], biasMin: [Int64], biasMax: [Int64]
    /// M: the largest input (L, or 255 for pixels).
    let inputMax: Int64

    init(w16: [Int16], biases: [Int64], channels d: Int, inputMax: Int64) {
        self.w16 = w16
        self.biases = biases
        self.inputMax = inputMax
        let k = w16.count / d
        var pos = [Int64](repeating: 0, count: d), neg = pos
        var biasMin = [Int64](repeating: Int64.max, count: d), biasMax = [Int64](repeating: Int64.min, count: d)
        for c in 0..<d {
            for v in w16[(c * k)..<((c + 1) * k)] {
                if v > 0 { pos[c] += Int64(v) } else { neg[c] += Int64(v) }
            }
        }
        for (i, v) in biases.enumerated() {
            biasMin[i % d] = min(biasMin[i % d], v)
            biasMax[i % d] = max(biasMax[i % d], v)
        }
        self.pos = pos; self.neg = neg; self.biasMin = biasMin; self.biasMax = biasMax
    }

    private static func half(_ s: Int) -> Int64 { s > 0 ? Int64(1) << (s - 1) : 0 }

    /// [lo, hi] of y and of every running sum P[t] of channel c at shift s.
    func sums(_ c: Int, shift s: Int) -> (lo: Int64, hi: Int64) {
        (inputMax * neg[c] + biasMin[c] + Self.half(s), inputMax * pos[c] + biasMax[c] + Self.half(s))
    }

    /// Every y and P[t] fits int32 at shift s.
    func fitsInt32(shift s: Int) -> Bool {
        (0..<pos.count).allSatisfy { c in
            let y = sums(c, shift: s)
            return y.lo >= -Int64(Int32.max) && y.hi <= Int64(Int32.max)
        }
    }

    /// The fused value floor(y / 2^s) of channel c, and the running floor(P[t] / 2^s): floor is monotone.
    func fusedValue(_ c: Int, shift s: Int) -> (lo: Int64, hi: Int64) {
        let y = sums(c, shift: s)
        return (y.lo >> s, y.hi >> s)
    }

    /// The smallest stream shift (0 ... 24) whose intervals keep every stream value, fused or at any
    /// step, in int16 after every writer (the stream holds each writer's partial sum), with every
    /// writer's exact sums in int32.
    /// - Throws: naming the first writer whose int32 sum could overflow, or, when no shift fits int16,
    ///   the first writer after which the stream's range leaves int16 even at shift 24.
    static func streamShift(_ writers: [StreamBounds], names: [String]) throws(PackError) -> Int {
        func firstOverflow(_ s: Int) -> Int? {  // the writer after which some channel leaves int16
            guard let d = writers.first?.pos.count else { return nil }
            var lo = [Int64](repeating: 0, count: d), hi = lo
            for (w, m) in writers.enumerated() {
                for c in 0..<d {
                    let v = m.anyValue(c, shift: s)
                    lo[c] += v.lo
                    hi[c] += v.hi
                    if lo[c] < -32767 || hi[c] > 32767 { return w }
                }
            }
            return nil
        }
        if let s = (0...Int(ModelImage.maxShift)).first(where: { s in
            writers.allSatisfy { $0.fitsInt32(shift: s) } && firstOverflow(s) == nil
        }) {
            return s
        }
        let top = Int(ModelImage.maxShift)
        if let w = writers.indices.first(where: { !writers[$0].fitsInt32(shift: top) }) {
            throw PackError("\(names[w]): the stream writer's exact sum (its inputs times its int16 weights plus its bias) "
                            + "could overflow int32 (SEMANTICS.md, section 4, step 5)")
        }
        let w = firstOverflow(top) ?? 0
        throw PackError("\(names[w]): no stream shift in 0...\(top) keeps the residual stream in int16 after this writer "
                        + "(SEMANTICS.md, section 4, step 5)")
    }

    /// Any value the writer puts in the stream: the fused value, or a step floor(P[t] / 2^s) -
    /// floor(P[t-1] / 2^s), which is the fused interval at t = 0 and within [floor(neg / 2^s),
    /// ceil(pos / 2^s)] after (floor(a) - floor(b) lies in [floor(a - b), ceil(a - b)]).
    func anyValue(_ c: Int, shift s: Int) -> (lo: Int64, hi: Int64) {
        let f = fusedValue(c, shift: s)
        return (min(f.lo, neg[c] >> s), max(f.hi, -((-pos[c]) >> s)))
    }
}
