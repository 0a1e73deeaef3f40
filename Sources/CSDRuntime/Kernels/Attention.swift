import CSDMachine

/// The two attention products (docs/SEMANTICS.md section 3, ATTN_*).
public enum AttentionProduct {
    /// S[h][i][j] = sum over head h's channels c of q[i][c] * k[j][c]: x = q, b = k, both [n][d];
    /// output [heads][n][n], one neuron per head.
    case scores
    /// O[i][c] = sum over keys j of a[h(c)][i][j] * v[j][c]: x = a [heads][n][n], b = v [n][d];
    /// output [n][d], a neuron per channel.
    case values
}

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

    /// The attention ops on the event path (D < T, or uint16 trains). Scores: per head h and query i,
    /// q's channels of the head are listed once, and key j gets the currents of the list against
    /// k[j] and fires (theta[h], bias[h]) into out[(h * n + i) * n + j]. Values: the attention row
    /// a[h][i] is listed once, and channel c of the head gets the currents of the list against
    /// v[.][c] and fires (theta[c], bias[c]) into out[i * d + c]. `scratch` holds the T currents
    /// (16 int32), then the list. Returns the spikes; adds the synaptic operations to `synapticOps`.
    @inline(__always)
    public static func attentionEvents(_ product: AttentionProduct, _ x: UnsafeRawPointer, _ b: UnsafeRawPointer,
                                       _ out: UnsafeMutableRawPointer, width: TrainWidth, tokens n: Int, width d: Int,
                                       heads: Int, thresholds theta: UnsafePointer<Int32>, biases bias: UnsafePointer<Int32>,
                                       shift: Int32, levels: Int32, steps: Int, delay: Int,
                                       scratch: UnsafeMutablePointer<UInt32>, synapticOps: inout UInt32) -> UInt32 {
        let values = product == .values, hd = Int(csd_quot(Int32(truncatingIfNeeded: d), Int32(truncatingIfNeeded: heads)))
        let cur = UnsafeMutableRawPointer(scratch).assumingMemoryBound(to: Int32.self), list = scratch + 16
        let eb = width.bytes
        var spikes: UInt32 = 0, h = 0
        while h < heads {
            var i = 0
            while i < n {
                let row = values ? (h &* n &+ i) &* n : i &* d &+ h &* hd, outputs = values ? hd : n
                let active = listRow(x + row &* eb, width: width, count: values ? n : hd, list)
                var m = 0
                while m < outputs {
                    let p = values ? h &* hd &+ m : h, o = values ? i &* d &+ h &* hd &+ m : (h &* n &+ i) &* n &+ m
                    cur.update(repeating: 0, count: steps)
                    synapticOps &+= listProducts(list, count: active, b + (h &* hd &+ m &* (values ? 1 : d)) &* eb,
                                                 bstride: values ? d : 1, width: width, cur)
                    let t = difTrain(cur, stride: 1, steps: steps, delay: delay, shift: shift, bias: bias[p],
                                     threshold: theta[p], levels: levels)
                    setTrain(out, width, o, t)
                    spikes &+= Kernels.spikes(t)
                    m &+= 1
                }
                i &+= 1
            }
            h &+= 1
        }
        return spikes
    }

    /// The synaptic operations of the attention products from counts (the count path, prefix
    /// trains), wrapping like the event path: a pair of trains where both spike, counts a and b,
    /// costs a + b - 1 additions (`listProducts`). Summed over the pairs of group g < g1 * g2
    /// (g = u * g2 + v): the count lists x[u * ax + v * bx + i * sx], i < nx, and
    /// y[u * ay + v * by + j * sy], j < ny, pair each with each, so the sum is
    /// (sum over spiking x of (a - 1)) * #y + #x * (sum of y), # counting the spiking entries.
    /// Scores (q and k [n][d]): a group per channel; values (a [heads][n][n], v [n][d]): a group
    /// per head and key.
    @inline(never)
    public static func pairSynapticOps(_ x: UnsafePointer<UInt8>, _ y: UnsafePointer<UInt8>, g1: Int, g2: Int, ax: Int,
                                       bx: Int, sx: Int, nx: Int, ay: Int, by: Int, sy: Int, ny: Int) -> UInt32 {
        var total: UInt32 = 0, u = 0
        while u < g1 {
            var v = 0
            while v < g2 {
                var sa: UInt32 = 0, na: UInt32 = 0, sb: UInt32 = 0, nb: UInt32 = 0  // sums and spiking entries
                var p = x + (u &* ax &+ v &* bx)
                var end = p + nx &* sx
                while p != end {
                    sa &+= UInt32(p.pointee)
                    na &+= p.pointee != 0 ? 1 : 0
                    p += sx
                }
                p = y + (u &* ay &+ v &* by)
                end = p + ny &* sy
                while p != end {
                    sb &+= UInt32(p.pointee)
                    nb &+= p.pointee != 0 ? 1 : 0
                    p += sy
                }
                total &+= (sa &- na) &* nb &+ na &* sb
                v &+= 1
            }
            u &+= 1
        }
        return total
    }
}
