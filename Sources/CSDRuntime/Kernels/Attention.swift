import CSDMachine

extension Kernels {
    /// Temporal decomposition of the pairs (a_c, b_c): a_c from an active list (entries
    /// (c << 16) | train, `listRow`), b_c = b[c * bstride] (uint8 or uint16 trains):
    /// cur[t] += a_t * B_t + A_{t-1} * b_t, capitals the running counts (B_t through t, A_{t-1}
    /// through t - 1). Returns the additions: one per spike of a, and one per spike of b after
    /// step 0, of every pair where both trains spike (as the reference counts them).
    @inline(__always)
    public static func listProducts(_ list: UnsafePointer<UInt32>, count: Int, _ b: UnsafeRawPointer, bstride: Int,
                                    width: TrainWidth, _ cur: UnsafeMutablePointer<Int32>) -> UInt32 {
        var n: UInt32 = 0, e = 0
        while e < count {
            let v = list[e], x = v & 0xFFFF, y = train(b, width, Int(v &>> 16) &* bstride)
            e &+= 1
            if x == 0 || y == 0 { continue }
            n &+= spikes(x) &+ spikes(y & ~1)
            // step by step up to the last spike of either train (no count-trailing-zeros, which
            // RV32IMAC and ARMv6-M lack): A = A_{t-1}, B = B_t
            var a = x, bs = y, at: UInt32 = 0, bt: UInt32 = 0, c = cur
            while a | bs != 0 {
                let sa = a & 1, sb = bs & 1
                bt &+= sb
                if sa | sb != 0 {
                    c.pointee = Int32(bitPattern: UInt32(bitPattern: c.pointee) &+ (sa != 0 ? bt : 0) &+ (sb != 0 ? at : 0))
                }
                at &+= sa
                a &>>= 1
                bs &>>= 1
                c += 1
            }
        }
        return n
    }

    /// The attention pair on the event path (D < T, or uint16 trains; docs/SEMANTICS.md, "Streamed
    /// attention"). Per head h and query i: q[i]'s channels of the head are listed once, and key j gets
    /// the currents of the list against k[j] and fires (scores' theta[h], beta[h]) into the scores row, a
    /// train per key in the scratch; then the row is listed once, and channel c of the head gets the
    /// currents of the list against v[.][c] (v channel-major, [D][N]) and fires (values' theta[c], beta[c]) into out[i * d + c]
    /// (which may be q: q[i]'s head channels are listed by then). `scratch` holds the T currents (16
    /// int32), the list (one word per entry, up to max(d / heads, n) entries, rounded up to four), then the
    /// scores row. Returns the scores' and the values' spikes; adds their synaptic operations.
    @inline(__always)
    public static func attentionEvents(q: UnsafeRawPointer, k: UnsafeRawPointer, v: UnsafeRawPointer,
                                       _ out: UnsafeMutableRawPointer, width: TrainWidth, tokens n: Int, width d: Int,
                                       heads: Int, scores: (theta: UnsafePointer<Int32>, beta: UnsafePointer<Int32>, shift: Int32),
                                       values: (theta: UnsafePointer<Int32>, beta: UnsafePointer<Int32>, shift: Int32),
                                       levels: Int32, steps: Int, delay: Int, scratch: UnsafeMutablePointer<UInt32>,
                                       scoresOps: inout UInt32, valuesOps: inout UInt32) -> (UInt32, UInt32) {
        let hd = Int(csd_quot(Int32(truncatingIfNeeded: d), Int32(truncatingIfNeeded: heads)))
        let cur = UnsafeMutableRawPointer(scratch).assumingMemoryBound(to: Int32.self), list = scratch + 16
        let row = UnsafeMutableRawPointer(list + ((max(hd, n) &+ 3) & ~3))
        let eb = width.bytes
        var spikes: (UInt32, UInt32) = (0, 0), h = 0
        while h < heads {
            let c0 = h &* hd
            var i = 0
            while i < n {
                // scores a[h][i][j]: q[i]'s head channels against k[j], key by key, into the row
                var active = listRow(q + (i &* d &+ c0) &* eb, width: width, count: hd, list)
                spikes.0 &+= listNeurons(list, count: active, k + c0 &* eb, step: d &* eb, bstride: 1, width: width,
                                         outputs: n, scores.theta + h, scores.beta + h, paramStep: 0, shift: scores.shift,
                                         row, levels: levels, steps: steps, delay: delay, cur, &scoresOps)
                // values o[i][c0 + m]: the row against row c0 + m of v ([D][N]), into out (over q[i]'s head channels)
                active = listRow(UnsafeRawPointer(row), width: width, count: n, list)
                spikes.1 &+= listNeurons(list, count: active, v + c0 &* n &* eb, step: n &* eb, bstride: 1, width: width, outputs: hd,
                                         values.theta + c0, values.beta + c0, paramStep: 1, shift: values.shift,
                                         out + (i &* d &+ c0) &* eb, levels: levels, steps: steps, delay: delay, cur, &valuesOps)
                i &+= 1
            }
            h &+= 1
        }
        return spikes
    }

    /// `outputs` neurons m of one list: neuron m pairs the list with the trains at b + m * step (stride
    /// `bstride` between the list's indices), fires (theta[m * paramStep], beta[m * paramStep]) and
    /// writes its train at out[m]. `cur` holds the T currents. Returns the spikes; adds the additions.
    @inline(never)
    static func listNeurons(_ list: UnsafePointer<UInt32>, count active: Int, _ b: UnsafeRawPointer, step: Int, bstride: Int,
                            width: TrainWidth, outputs: Int, _ theta: UnsafePointer<Int32>, _ beta: UnsafePointer<Int32>,
                            paramStep: Int, shift: Int32, _ out: UnsafeMutableRawPointer, levels: Int32, steps: Int,
                            delay: Int, _ cur: UnsafeMutablePointer<Int32>, _ ops: inout UInt32) -> UInt32 {
        var spikes: UInt32 = 0, m = 0
        while m < outputs {
            cur.update(repeating: 0, count: steps)
            ops &+= listProducts(list, count: active, b + m &* step, bstride: bstride, width: width, cur)
            let p = m &* paramStep
            let t = difTrain(cur, stride: 1, steps: steps, delay: delay, shift: shift, bias: beta[p], threshold: theta[p],
                             levels: levels)
            setTrain(out, width, m, t)
            spikes &+= Kernels.spikes(t)
            m &+= 1
        }
        return spikes
    }

    /// The synaptic operations of the attention products from counts (the count path, prefix
    /// trains), wrapping like the event path: a pair of trains where both spike, counts a and b,
    /// costs a + b - 1 additions (`listProducts`). Summed over the groups j < `groups`: the count
    /// lists x[j + i * sx], i < nx, and y[j + i * sy], i < ny, pair each with each, so the sum is
    /// (sum over spiking x of (a - 1)) * #y + #x * (sum of y), # counting the spiking entries.
    /// Scores (q and k [n][d]): a group per channel; values (a block of scores rows, v's head rows of
    /// [d][n]): a group per key.
    @inline(__always)
    public static func pairSynapticOps(_ x: UnsafePointer<UInt8>, _ y: UnsafePointer<UInt8>, groups: Int, sx: Int, nx: Int,
                                       sy: Int, ny: Int) -> UInt32 {
        #if arch(x86_64)
        if useX86Twins { return pairSynapticOpsX86(x, y, groups: groups, sx: sx, nx: nx, sy: sy, ny: ny) }
        #endif
        return pairSynapticOpsPortable(x, y, groups: groups, sx: sx, nx: nx, sy: sy, ny: ny)
    }

    /// The portable loop of `pairSynapticOps` (what the MCU builds run).
    @inline(never)
    public static func pairSynapticOpsPortable(_ x: UnsafePointer<UInt8>, _ y: UnsafePointer<UInt8>, groups: Int, sx: Int,
                                               nx: Int, sy: Int, ny: Int) -> UInt32 {
        var total: UInt32 = 0, j = 0
        while j < groups {
            let a = countStats(x + j, count: nx, stride: sx)
            if a.spiking != 0 {  // a silent x side pairs with nothing: y's side unread
                let b = countStats(y + j, count: ny, stride: sy)
                total &+= (a.sum &- a.spiking) &* b.spiking &+ a.spiking &* b.sum
            }
            j &+= 1
        }
        return total
    }

    /// The sum and the number of nonzero entries (spiking neurons) of the counts p[i * stride], i < count.
    @inline(__always) static func countStats(_ p: UnsafePointer<UInt8>, count: Int, stride: Int) -> (sum: UInt32, spiking: UInt32) {
        var sum: UInt32 = 0, spiking: UInt32 = 0, q = p
        let end = p + count &* stride
        while q != end {
            sum &+= UInt32(q.pointee)
            spiking &+= q.pointee != 0 ? 1 : 0
            q += stride
        }
        return (sum, spiking)
    }
}
