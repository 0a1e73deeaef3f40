import CSDFormat

/// The offline arena plan of one execution mode.
public struct ArenaPlan {
    /// Arena offset of each value (index = value id).
    public var offsets: [Int]
    /// Arena offset of each op's kernel scratch (index = op; 0 where the op needs none).
    public var scratchOffsets: [Int]
    /// The furthest byte of any buffer or kernel scratch, rounded up to 16: the exact arena need.
    public var arenaBytes: Int
    /// The most bytes live at once, an op's scratch included (the lower bound any plan needs).
    public var liveBytes: Int
}

/// A kernel scratch to place: the ops whose records hold its offset (`owner`; the attention pair: both records),
/// its lifetime [first, last] (a band unit's: both records) and its bytes.
public struct PlannedScratch {
    public var owner: ClosedRange<Int>
    public var first: Int
    public var last: Int
    public var bytes: Int
}

/// Greedy first-fit over lifetimes: the buffers and the ops' kernel scratch (each live while its op runs;
/// docs/FORMAT.md, "Kernel scratch"), sorted by size (largest first), each placed at the lowest 16-aligned
/// offset that overlaps no placed one whose lifetime [first, last] intersects its own.
public enum Planner {
    public static func plan(_ values: [PlannedValue], scratch: [PlannedScratch], opCount: Int, mode: ExecutionMode,
                            timeSteps: Int) throws(PackError) -> ArenaPlan {
        var sizes: [Int] = [], spans: [(first: Int, last: Int)] = []
        for v in values {
            guard let s = try? bufferBytes(v.use, mode: mode, timeSteps: timeSteps) else {
                throw PackError("a buffer's size overflows")
            }
            sizes.append((s + 15) & ~15)
            spans.append((v.first, v.last))
        }
        for s in scratch {
            sizes.append((s.bytes + 15) & ~15)
            spans.append((s.first, s.last))
        }
        let order = sizes.indices.sorted { sizes[$0] != sizes[$1] ? sizes[$0] > sizes[$1] : spans[$0].first < spans[$1].first }
        var offsets = [Int](repeating: 0, count: sizes.count)
        var placed: [Int] = []
        for i in order where sizes[i] > 0 {
            let conflicts = placed.filter { j in spans[i].first <= spans[j].last && spans[j].first <= spans[i].last }
                .map { (offsets[$0], offsets[$0] + sizes[$0]) }
                .sorted { $0.0 < $1.0 }
            var offset = 0
            for (start, end) in conflicts {
                if offset + sizes[i] <= start { break }
                offset = max(offset, end)
            }
            offsets[i] = offset
            placed.append(i)
        }
        let arena = zip(offsets, sizes).map { $0 + $1 }.max() ?? 0
        var live = 0
        for op in 0..<max(opCount, 1) {
            live = max(live, sizes.indices.filter { spans[$0].first <= op && op <= spans[$0].last }.map { sizes[$0] }.reduce(0, +))
        }
        guard arena + 15 <= Int(UInt32.max) else { throw PackError("the arena plan exceeds 4 GiB") }
        var scratchOffsets = [Int](repeating: 0, count: opCount)
        for (k, s) in scratch.enumerated() {
            for op in s.owner { scratchOffsets[op] = offsets[values.count + k] }
        }
        return ArenaPlan(offsets: Array(offsets[0..<values.count]), scratchOffsets: scratchOffsets,
                         arenaBytes: (arena + 15) & ~15, liveBytes: live)
    }

    /// The kernel scratch of every op in `mode` (docs/FORMAT.md, "Kernel scratch"): one per op that needs
    /// any, the attention pair's for both its records; in the fused plan, a band unit's two (docs/FORMAT.md,
    /// "Bands") for both its records, and an attention unit's one region for all of its ops.
    public static func scratch(_ ops: [ConvertedOp], mode: ExecutionMode, timeSteps: Int) -> [PlannedScratch] {
        var r: [PlannedScratch] = []
        var unitEnd = -1  // the last op of the attention unit being placed (fused plan)
        for (i, op) in ops.enumerated() where op.record.kind != .attentionValues {
            if mode == .fused && op.record.kind == .streamNeuron && op.record.band != 0 {
                // an attention unit (docs/FORMAT.md, "Attention units"): one region for its ops' scratch, live through
                // the six records, at their largest need
                let bytes = ops[(i + 1)...(i + 4)].map { $0.record.scratchBytes(.fused, timeSteps: timeSteps) }.max() ?? 0
                r.append(PlannedScratch(owner: (i + 1)...(i + 5), first: i, last: i + 5, bytes: bytes))
                unitEnd = i + 5
                continue
            }
            guard i > unitEnd else { continue }
            let bytes = op.record.scratchBytes(mode, timeSteps: timeSteps)
            guard bytes > 0 else { continue }
            let producer = mode == .fused && op.record.band != 0, consumer = mode == .fused && i > 0 && ops[i - 1].record.band != 0
            let pair = op.record.kind == .attentionScores
            r.append(PlannedScratch(owner: i...(pair ? i + 1 : i), first: consumer ? i - 1 : i,
                                    last: pair || producer ? i + 1 : i, bytes: bytes))
        }
        return r
    }
}
