import CSDFormat

/// The offline arena plan of one execution mode.
public struct ArenaPlan {
    /// Arena offset of each value (index = value id).
    public var offsets: [Int]
    /// End of the furthest buffer, rounded up to 16.
    public var bufferBytes: Int
    /// The kernels' scratch, after the buffers (docs/FORMAT.md, "Kernel scratch").
    public var scratchBytes: Int
    /// Buffers plus scratch: the exact arena need.
    public var arenaBytes: Int { bufferBytes + scratchBytes }
    /// The most bytes live at once (the lower bound any plan needs).
    public var liveBytes: Int
}

/// Greedy first-fit over buffer lifetimes: values sorted by size (largest first),
/// each placed at the lowest 16-aligned offset that overlaps no placed value
/// whose lifetime [first, last] intersects its own.
public enum Planner {
    public static func plan(_ values: [PlannedValue], mode: ExecutionMode, timeSteps: Int,
                            scratchBytes: Int = 0) throws(PackError) -> ArenaPlan {
        var sizes: [Int] = []
        for v in values {
            guard let s = try? bufferBytes(v.use, mode: mode, timeSteps: timeSteps) else {
                throw PackError("a buffer's size overflows")
            }
            sizes.append((s + 15) & ~15)
        }
        let order = values.indices.sorted { sizes[$0] != sizes[$1] ? sizes[$0] > sizes[$1] : values[$0].first < values[$1].first }
        var offsets = [Int](repeating: -1, count: values.count)
        var placed: [Int] = []
        for i in order {
            let conflicts = placed.filter { j in values[i].first <= values[j].last && values[j].first <= values[i].last }
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
        let lastOp = values.map(\.last).max() ?? 0
        var live = 0
        for op in 0...lastOp {
            live = max(live, values.indices.filter { values[$0].first <= op && op <= values[$0].last }.map { sizes[$0] }.reduce(0, +))
        }
        guard arena + scratchBytes + 15 <= Int(UInt32.max) else { throw PackError("the arena plan exceeds 4 GiB") }
        return ArenaPlan(offsets: offsets, bufferBytes: (arena + 15) & ~15, scratchBytes: scratchBytes, liveBytes: live)
    }
}
