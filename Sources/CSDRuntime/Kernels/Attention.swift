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
                if width == .bits8 {
                    spikes.0 &+= listNeuronsLanes(list, count: active, k + c0, step: d, outputs: n, scores.theta + h,
                                                  scores.beta + h, paramStep: 0, shift: scores.shift, row, levels: levels,
                                                  steps: steps, delay: delay, cur, &scoresOps)
                } else {
                    spikes.0 &+= listNeurons(list, count: active, k + c0 &* 2, step: d &* 2, outputs: n, scores.theta + h,
                                             scores.beta + h, paramStep: 0, shift: scores.shift, row, levels: levels,
                                             steps: steps, delay: delay, cur, &scoresOps)
                }
                // values o[i][c0 + m]: the row against row c0 + m of v ([D][N]), into out (over q[i]'s head channels)
                active = listRow(UnsafeRawPointer(row), width: width, count: n, list)
                if width == .bits8 {
                    spikes.1 &+= listNeuronsLanes(list, count: active, v + c0 &* n, step: n, outputs: hd, values.theta + c0,
                                                  values.beta + c0, paramStep: 1, shift: values.shift, out + (i &* d &+ c0),
                                                  levels: levels, steps: steps, delay: delay, cur, &valuesOps)
                } else {
                    spikes.1 &+= listNeurons(list, count: active, v + c0 &* n &* 2, step: n &* 2, outputs: hd, values.theta + c0,
                                             values.beta + c0, paramStep: 1, shift: values.shift, out + (i &* d &+ c0) &* 2,
                                             levels: levels, steps: steps, delay: delay, cur, &valuesOps)
                }
                i &+= 1
            }
            h &+= 1
        }
        return spikes
    }

    /// `outputs` neurons m of one list of uint16 trains (T > 8; uint8 trains: `listNeuronsLanes`): neuron m
    /// pairs the list with the trains at b + m * step (stride 1 between the list's indices), step by step
    /// (`listProducts`), fires (theta[m * paramStep], beta[m * paramStep]) and writes its train at out[m].
    /// `cur` holds the T currents. Returns the spikes; adds the additions.
    @inline(never)
    static func listNeurons(_ list: UnsafePointer<UInt32>, count active: Int, _ b: UnsafeRawPointer, step: Int,
                            outputs: Int, _ theta: UnsafePointer<Int32>, _ beta: UnsafePointer<Int32>,
                            paramStep: Int, shift: Int32, _ out: UnsafeMutableRawPointer, levels: Int32, steps: Int,
                            delay: Int, _ cur: UnsafeMutablePointer<Int32>, _ ops: inout UInt32) -> UInt32 {
        var spikes: UInt32 = 0, m = 0
        while m < outputs {
            cur.update(repeating: 0, count: steps)
            ops &+= listProducts(list, count: active, b + m &* step, bstride: 1, width: .bits16, cur)
            let p = m &* paramStep
            let t = difTrain(cur, stride: 1, steps: steps, delay: delay, shift: shift, bias: beta[p], threshold: theta[p],
                             levels: levels)
            setTrain(out, .bits16, m, t)
            spikes &+= Kernels.spikes(t)
            m &+= 1
        }
        return spikes
    }

    /// `listNeurons` for uint8 trains (T <= 8; the list's trains and those at b + m * step, stride 1), the
    /// pair's currents for all steps at once in lanes of four bits (lane t: bits 4t ..< 4t + 4): with a
    /// train's spike masks s (lane t 15 if it spikes at t) and running counts C (its spikes through t), both
    /// from `trainLanes`, f = (s_x & C_y) + ((C_x - (s_x & 1...1)) & s_y) has lane t
    /// a_t B_t + A_{t-1} b_t <= 8 + 7, what `listProducts` adds step by step. The even and the odd lanes go
    /// to bytes, which take 17 pairs (at most 255) before they are added to the currents. The additions
    /// counted are `listProducts`': spikes(x) + spikes(y & ~1) per pair where both spike (C's lanes 7 and 0).
    @inline(never)
    static func listNeuronsLanes(_ list: UnsafePointer<UInt32>, count active: Int, _ b: UnsafeRawPointer, step: Int,
                                 outputs: Int, _ theta: UnsafePointer<Int32>, _ beta: UnsafePointer<Int32>, paramStep: Int,
                                 shift: Int32, _ out: UnsafeMutableRawPointer, levels: Int32, steps: Int, delay: Int,
                                 _ cur: UnsafeMutablePointer<Int32>, _ ops: inout UInt32) -> UInt32 {
        let trains = b.assumingMemoryBound(to: UInt8.self), outs = out.assumingMemoryBound(to: UInt8.self)
        let listEnd = list + active
        // a neuron whose currents (all >= 0) cannot lift v to theta fires never: checked without the DIF loop
        // where no sum can wrap (the currents of one block of the list, at most 8 * 255, shifted by at most 19)
        let sh = UInt32(truncatingIfNeeded: shift) & 31, bounded = sh <= 19
        var spikes: UInt32 = 0, additions: UInt32 = 0, m = 0, p = 0
        while m < outputs {
            let y0 = trains + m &* step
            var e = list, silent = false
            repeat {
                let end = listEnd - e > 17 ? e + 17 : listEnd
                var even: UInt32 = 0, odd: UInt32 = 0
                while e != end {
                    let v = e.pointee
                    e += 1
                    let y = Int(y0[Int(v &>> 16)])
                    if y == 0 { continue }
                    let x = Int(v & 255)
                    let lx = trainLanes[x], ly = trainLanes[y]
                    let sx = UInt32(truncatingIfNeeded: lx), cx = UInt32(truncatingIfNeeded: lx &>> 32)
                    let sy = UInt32(truncatingIfNeeded: ly), cy = UInt32(truncatingIfNeeded: ly &>> 32)
                    let f = (sx & cy) &+ ((cx &- (sx & 0x1111_1111)) & sy)
                    even &+= f & 0x0F0F_0F0F
                    odd &+= (f &>> 4) & 0x0F0F_0F0F
                    additions &+= (cx &>> 28) &+ (cy &>> 28) &- (cy & 1)
                }
                // byte k of `even` is step 2k, of `odd` step 2k + 1
                if e - list <= 17 {  // the first (or only) block of the list
                    if e == listEnd && bounded {
                        let halves = (even & 0x00FF_00FF) &+ ((even &>> 8) & 0x00FF_00FF) &+ (odd & 0x00FF_00FF)
                            &+ ((odd &>> 8) & 0x00FF_00FF)
                        let total = Int32(bitPattern: ((halves & 0xFFFF) &+ (halves &>> 16)) &<< sh)
                        let v0 = Int32(bitPattern: UInt32(bitPattern: theta[p] &>> 1) &+ UInt32(bitPattern: beta[p]))
                        if v0 <= theta[p] &- 1 &- total {  // v0 + total < theta: validated theta >= 1, no wrap
                            silent = true
                            break
                        }
                    }
                    storeLanes(even, odd, cur)
                } else {
                    addLanes(even, odd, cur)
                }
            } while e != listEnd
            let t = silent ? 0 : difTrainInline(cur, stride: 1, steps: steps, delay: delay, shift: shift, bias: beta[p],
                                                threshold: theta[p], levels: levels)
            outs[m] = UInt8(truncatingIfNeeded: t)
            spikes &+= UInt32(spikesPerByte[Int(t & 255)])
            p &+= paramStep
            m &+= 1
        }
        ops &+= additions
        return spikes
    }

    /// The eight byte lanes of `listNeuronsLanes` as the currents cur[0 ..< 8].
    @inline(__always) static func storeLanes(_ even: UInt32, _ odd: UInt32, _ cur: UnsafeMutablePointer<Int32>) {
        cur[0] = Int32(bitPattern: even & 255)
        cur[1] = Int32(bitPattern: odd & 255)
        cur[2] = Int32(bitPattern: (even &>> 8) & 255)
        cur[3] = Int32(bitPattern: (odd &>> 8) & 255)
        cur[4] = Int32(bitPattern: (even &>> 16) & 255)
        cur[5] = Int32(bitPattern: (odd &>> 16) & 255)
        cur[6] = Int32(bitPattern: even &>> 24)
        cur[7] = Int32(bitPattern: odd &>> 24)
    }

    /// The eight byte lanes added to the currents (a list longer than 17 entries).
    @inline(never) static func addLanes(_ even: UInt32, _ odd: UInt32, _ cur: UnsafeMutablePointer<Int32>) {
        var e = even, o = odd, c = cur
        let end = cur + 8
        while c != end {
            c[0] &+= Int32(bitPattern: e & 255)
            c[1] &+= Int32(bitPattern: o & 255)
            e &>>= 8
            o &>>= 8
            c += 2
        }
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

/// Each uint8 train x in lanes of four bits (`Kernels.listNeuronsLanes`), lane t (bits 4t ..< 4t + 4) for
/// step t: the low word holds its spike masks (lane t 15 if x spikes at step t, bit t, else 0), the high
/// word its running counts (lane t: the spikes at steps 0 through t; lane 7 all its spikes, lane 0 its bit 0).
@usableFromInline let trainLanes: InlineArray<256, UInt64> = [
    0x00000000_00000000, 0x11111111_0000000F, 0x11111110_000000F0, 0x22222221_000000FF,
    0x11111100_00000F00, 0x22222211_00000F0F, 0x22222210_00000FF0, 0x33333321_00000FFF,
    0x11111000_0000F000, 0x22222111_0000F00F, 0x22222110_0000F0F0, 0x33333221_0000F0FF,
    0x22222100_0000FF00, 0x33333211_0000FF0F, 0x33333210_0000FFF0, 0x44444321_0000FFFF,
    0x11110000_000F0000, 0x22221111_000F000F, 0x22221110_000F00F0, 0x33332221_000F00FF,
    0x22221100_000F0F00, 0x33332211_000F0F0F, 0x33332210_000F0FF0, 0x44443321_000F0FFF,
    0x22221000_000FF000, 0x33332111_000FF00F, 0x33332110_000FF0F0, 0x44443221_000FF0FF,
    0x33332100_000FFF00, 0x44443211_000FFF0F, 0x44443210_000FFFF0, 0x55554321_000FFFFF,
    0x11100000_00F00000, 0x22211111_00F0000F, 0x22211110_00F000F0, 0x33322221_00F000FF,
    0x22211100_00F00F00, 0x33322211_00F00F0F, 0x33322210_00F00FF0, 0x44433321_00F00FFF,
    0x22211000_00F0F000, 0x33322111_00F0F00F, 0x33322110_00F0F0F0, 0x44433221_00F0F0FF,
    0x33322100_00F0FF00, 0x44433211_00F0FF0F, 0x44433210_00F0FFF0, 0x55544321_00F0FFFF,
    0x22210000_00FF0000, 0x33321111_00FF000F, 0x33321110_00FF00F0, 0x44432221_00FF00FF,
    0x33321100_00FF0F00, 0x44432211_00FF0F0F, 0x44432210_00FF0FF0, 0x55543321_00FF0FFF,
    0x33321000_00FFF000, 0x44432111_00FFF00F, 0x44432110_00FFF0F0, 0x55543221_00FFF0FF,
    0x44432100_00FFFF00, 0x55543211_00FFFF0F, 0x55543210_00FFFFF0, 0x66654321_00FFFFFF,
    0x11000000_0F000000, 0x22111111_0F00000F, 0x22111110_0F0000F0, 0x33222221_0F0000FF,
    0x22111100_0F000F00, 0x33222211_0F000F0F, 0x33222210_0F000FF0, 0x44333321_0F000FFF,
    0x22111000_0F00F000, 0x33222111_0F00F00F, 0x33222110_0F00F0F0, 0x44333221_0F00F0FF,
    0x33222100_0F00FF00, 0x44333211_0F00FF0F, 0x44333210_0F00FFF0, 0x55444321_0F00FFFF,
    0x22110000_0F0F0000, 0x33221111_0F0F000F, 0x33221110_0F0F00F0, 0x44332221_0F0F00FF,
    0x33221100_0F0F0F00, 0x44332211_0F0F0F0F, 0x44332210_0F0F0FF0, 0x55443321_0F0F0FFF,
    0x33221000_0F0FF000, 0x44332111_0F0FF00F, 0x44332110_0F0FF0F0, 0x55443221_0F0FF0FF,
    0x44332100_0F0FFF00, 0x55443211_0F0FFF0F, 0x55443210_0F0FFFF0, 0x66554321_0F0FFFFF,
    0x22100000_0FF00000, 0x33211111_0FF0000F, 0x33211110_0FF000F0, 0x44322221_0FF000FF,
    0x33211100_0FF00F00, 0x44322211_0FF00F0F, 0x44322210_0FF00FF0, 0x55433321_0FF00FFF,
    0x33211000_0FF0F000, 0x44322111_0FF0F00F, 0x44322110_0FF0F0F0, 0x55433221_0FF0F0FF,
    0x44322100_0FF0FF00, 0x55433211_0FF0FF0F, 0x55433210_0FF0FFF0, 0x66544321_0FF0FFFF,
    0x33210000_0FFF0000, 0x44321111_0FFF000F, 0x44321110_0FFF00F0, 0x55432221_0FFF00FF,
    0x44321100_0FFF0F00, 0x55432211_0FFF0F0F, 0x55432210_0FFF0FF0, 0x66543321_0FFF0FFF,
    0x44321000_0FFFF000, 0x55432111_0FFFF00F, 0x55432110_0FFFF0F0, 0x66543221_0FFFF0FF,
    0x55432100_0FFFFF00, 0x66543211_0FFFFF0F, 0x66543210_0FFFFFF0, 0x77654321_0FFFFFFF,
    0x10000000_F0000000, 0x21111111_F000000F, 0x21111110_F00000F0, 0x32222221_F00000FF,
    0x21111100_F0000F00, 0x32222211_F0000F0F, 0x32222210_F0000FF0, 0x43333321_F0000FFF,
    0x21111000_F000F000, 0x32222111_F000F00F, 0x32222110_F000F0F0, 0x43333221_F000F0FF,
    0x32222100_F000FF00, 0x43333211_F000FF0F, 0x43333210_F000FFF0, 0x54444321_F000FFFF,
    0x21110000_F00F0000, 0x32221111_F00F000F, 0x32221110_F00F00F0, 0x43332221_F00F00FF,
    0x32221100_F00F0F00, 0x43332211_F00F0F0F, 0x43332210_F00F0FF0, 0x54443321_F00F0FFF,
    0x32221000_F00FF000, 0x43332111_F00FF00F, 0x43332110_F00FF0F0, 0x54443221_F00FF0FF,
    0x43332100_F00FFF00, 0x54443211_F00FFF0F, 0x54443210_F00FFFF0, 0x65554321_F00FFFFF,
    0x21100000_F0F00000, 0x32211111_F0F0000F, 0x32211110_F0F000F0, 0x43322221_F0F000FF,
    0x32211100_F0F00F00, 0x43322211_F0F00F0F, 0x43322210_F0F00FF0, 0x54433321_F0F00FFF,
    0x32211000_F0F0F000, 0x43322111_F0F0F00F, 0x43322110_F0F0F0F0, 0x54433221_F0F0F0FF,
    0x43322100_F0F0FF00, 0x54433211_F0F0FF0F, 0x54433210_F0F0FFF0, 0x65544321_F0F0FFFF,
    0x32210000_F0FF0000, 0x43321111_F0FF000F, 0x43321110_F0FF00F0, 0x54432221_F0FF00FF,
    0x43321100_F0FF0F00, 0x54432211_F0FF0F0F, 0x54432210_F0FF0FF0, 0x65543321_F0FF0FFF,
    0x43321000_F0FFF000, 0x54432111_F0FFF00F, 0x54432110_F0FFF0F0, 0x65543221_F0FFF0FF,
    0x54432100_F0FFFF00, 0x65543211_F0FFFF0F, 0x65543210_F0FFFFF0, 0x76654321_F0FFFFFF,
    0x21000000_FF000000, 0x32111111_FF00000F, 0x32111110_FF0000F0, 0x43222221_FF0000FF,
    0x32111100_FF000F00, 0x43222211_FF000F0F, 0x43222210_FF000FF0, 0x54333321_FF000FFF,
    0x32111000_FF00F000, 0x43222111_FF00F00F, 0x43222110_FF00F0F0, 0x54333221_FF00F0FF,
    0x43222100_FF00FF00, 0x54333211_FF00FF0F, 0x54333210_FF00FFF0, 0x65444321_FF00FFFF,
    0x32110000_FF0F0000, 0x43221111_FF0F000F, 0x43221110_FF0F00F0, 0x54332221_FF0F00FF,
    0x43221100_FF0F0F00, 0x54332211_FF0F0F0F, 0x54332210_FF0F0FF0, 0x65443321_FF0F0FFF,
    0x43221000_FF0FF000, 0x54332111_FF0FF00F, 0x54332110_FF0FF0F0, 0x65443221_FF0FF0FF,
    0x54332100_FF0FFF00, 0x65443211_FF0FFF0F, 0x65443210_FF0FFFF0, 0x76554321_FF0FFFFF,
    0x32100000_FFF00000, 0x43211111_FFF0000F, 0x43211110_FFF000F0, 0x54322221_FFF000FF,
    0x43211100_FFF00F00, 0x54322211_FFF00F0F, 0x54322210_FFF00FF0, 0x65433321_FFF00FFF,
    0x43211000_FFF0F000, 0x54322111_FFF0F00F, 0x54322110_FFF0F0F0, 0x65433221_FFF0F0FF,
    0x54322100_FFF0FF00, 0x65433211_FFF0FF0F, 0x65433210_FFF0FFF0, 0x76544321_FFF0FFFF,
    0x43210000_FFFF0000, 0x54321111_FFFF000F, 0x54321110_FFFF00F0, 0x65432221_FFFF00FF,
    0x54321100_FFFF0F00, 0x65432211_FFFF0F0F, 0x65432210_FFFF0FF0, 0x76543321_FFFF0FFF,
    0x54321000_FFFFF000, 0x65432111_FFFFF00F, 0x65432110_FFFFF0F0, 0x76543221_FFFFF0FF,
    0x65432100_FFFFFF00, 0x76543211_FFFFFF0F, 0x76543210_FFFFFFF0, 0x87654321_FFFFFFFF,
]
