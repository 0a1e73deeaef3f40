import CSDFormat

/// Where the arena's bytes go, op by op, read from a validated image's op table.
public enum ArenaLiveness {
    /// Per op, the bytes (each buffer rounded up to 16, as the planner places them) of the buffers live while
    /// it runs in `mode`: its inputs and output, and every earlier output that a later op still reads. An op
    /// writing in place (a stream add, a square LINEAR over its input, ATTN_VALUES over q) continues the value
    /// it overwrites, so the buffer counts once; ATTN_VALUES also reads the pair's q and k (docs/FORMAT.md,
    /// "The attention pair"), whose scores have no buffer. Plus the op's kernel scratch (rounded up to 16;
    /// the pair's at both records). In the fused plan a band unit's two records (docs/FORMAT.md, "Bands")
    /// share their buffers and scratch: the producer's band at its size, its inputs live through the
    /// consumer, the consumer's output from the producer on; an attention unit's buffers and its one scratch
    /// region (docs/FORMAT.md, "Attention units") live through its six records. The largest entry is the lower bound any arena plan needs
    /// (`ArenaPlan.liveBytes`).
    public static func liveBytes(_ image: ModelImage, mode: ExecutionMode) -> [Int] {
        let n = image.opCount, timeSteps = Int(image.header.timeSteps)
        // value[i]: the value op i writes (an id: the op that first wrote its buffer); first/last: its lifetime.
        var value = [Int?](repeating: nil, count: n)
        var first = [Int](repeating: 0, count: n), last = [Int](repeating: 0, count: n), size = [Int](repeating: 0, count: n)
        func region(_ r: OpRecord, _ use: ValueUse) -> (Int, Int) {
            (r.output(mode), (((try? CSDFormat.bufferBytes(use, mode: mode, timeSteps: timeSteps)) ?? 0) + 15) & ~15)
        }
        /// The value whose buffer holds offset `offset` when op `k` runs: the latest earlier writer's.
        func producer(_ offset: Int, before k: Int) -> Int? {
            var j = k - 1
            while j >= 0 {
                let p = image.op(j)
                if let use = p.outputUse {
                    let (o, s) = region(p, use)
                    if offset >= o && offset < o + s { return value[j] }
                }
                j -= 1
            }
            return nil
        }
        for k in 0..<n {
            let r = image.op(k)
            var reads: [Int] = []
            if r.inputUse.inArena { reads.append(r.input(mode)) }
            if r.input2Use != nil { reads.append(r.input2(mode)) }
            if r.kind == .attentionValues, k > 0 {
                let scores = image.op(k - 1)
                reads.append(scores.input(mode))
                reads.append(scores.input2(mode))
            }
            let unit = mode == .fused && image.consumesBand(k)  // the producer's inputs stay live through k
            if unit {
                let p = image.op(k - 1)
                if p.inputUse.inArena, let v = producer(p.input(mode), before: k - 1) { last[v] = k }
            }
            // an attention unit's buffers live through its six records (fused plan)
            let attention = mode == .fused ? image.attentionUnit(containing: k) : nil
            for offset in reads { if let v = producer(offset, before: k) { last[v] = max(last[v], attention.map { $0 + 5 } ?? k) } }
            guard let use = r.outputUse, use.inArena else { continue }
            if r.readsOutputStream || reads.contains(r.output(mode)), let v = producer(r.output(mode), before: k) {
                value[k] = v  // the same buffer, written in place
                last[v] = max(last[v], k)
            } else {
                value[k] = k
                first[k] = attention ?? (unit ? k - 1 : k); last[k] = max(k, attention.map { $0 + 5 } ?? k)
                size[k] = region(r, use).1
            }
        }
        var live = (0..<n).map { (image.op($0).scratchBytes(mode, timeSteps: timeSteps) + 15) & ~15 }
        for k in 1..<max(n, 1) where mode == .fused && image.consumesBand(k) {  // a unit's two scratches at both records
            let a = live[k - 1], b = live[k]
            live[k - 1] = a + b; live[k] = a + b
        }
        for a in 0..<n where mode == .fused && image.attentionUnit(containing: a) == a {  // one region for the unit's scratch
            let most = live[(a + 1)...(a + 4)].max() ?? 0
            for k in a...(a + 5) { live[k] = most }
        }
        for v in 0..<n where value[v] == v {
            for k in first[v]...last[v] { live[k] += size[v] }
        }
        return live
    }

    /// The first op with the most live bytes.
    public static func peak(_ live: [Int]) -> Int {
        var best = 0
        for (i, b) in live.enumerated() where b > live[best] { best = i }
        return best
    }
}
