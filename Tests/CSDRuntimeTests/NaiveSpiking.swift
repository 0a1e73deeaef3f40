import CSDFormat

/// A whole spiking inference simulated step by step, written here from docs/SEMANTICS.md (sections 2
/// and 3) without the runtime's kernels: per-step currents from the spikes at each step, the DIF
/// neuron loop as the spec writes it, max-pool from running counts, the attention decomposition
/// `I[t] = a_t B_t + A_{t-1} b_t`, a stream `[N][D][T]`. 64-bit arithmetic, no count path, no event
/// lists. Each op's value is kept by its spiking arena offset (the validated plan chains every input
/// to the latest output at that offset).
struct NaiveSpiking {
    let image: ModelImage
    var params: NaiveModel { NaiveModel(image: image) }

    /// A value in spiking mode: spike trains (bit t = spike at step t), one per neuron, or the stream
    /// `X[(n * D + c) * T + t]`.
    enum Value { case trains([UInt32]), stream([Int]) }

    /// Every op's output in the runtime's arena layout (nil for the classifier) and the logits.
    func run(_ pixels: [UInt8], delay: Int) -> (logits: [Int32], outputs: [[UInt8]?]) {
        let h = image.header
        let steps = Int(h.timeSteps), levels = Int(h.levels)
        let p = params
        var values: [Int: Value] = [:]
        var outputs: [[UInt8]?] = []
        var logits: [Int32] = []
        var scores: [UInt32] = []  // ATTN_SCORES' trains, for the ATTN_VALUES that follows

        func trains(at offset: Int) -> [UInt32] {
            guard case .trains(let t)? = values[offset] else { fatalError("no trains at \(offset)") }
            return t
        }
        /// S[t * neurons + i]: 1 when neuron i spikes at step t.
        func spikes(_ trains: [UInt32]) -> [Int] {
            (0..<steps).flatMap { t in trains.map { Int(($0 >> UInt32(t)) & 1) } }
        }
        /// C[t * neurons + i]: the spikes of neuron i at steps 0 ... t.
        func running(_ trains: [UInt32]) -> [Int] {
            (0..<steps).flatMap { t in trains.map { ($0 & UInt32((1 << (t + 1)) - 1)).nonzeroBitCount } }
        }
        /// SEMANTICS.md 2: v = floor(theta / 2); for tau in 0 ..< T + D: add I[tau] (tau < T); from tau = D
        /// fire (at most L times) whenever v >= theta, the spike landing at step tau - D.
        func dif(_ op: OpRecord, _ j: Int, _ sums: [Int]) -> UInt32 {
            let theta = p.i32(op.thresholds, j), beta = p.i32(op.biases, j)
            var v = theta / 2, emitted = 0, train: UInt32 = 0
            for tau in 0..<(steps + delay) {
                if tau < steps { v += sums[tau] * (1 << Int(op.shift)) + (tau == 0 ? beta : 0) }
                if tau >= delay && v >= theta && emitted < levels {
                    train |= 1 << UInt32(tau - delay); v -= theta; emitted += 1
                }
            }
            return train
        }
        /// `sums[t * size + i]` (per-step accumulation of output i) through the neurons, the channel of i given by `channel`.
        func fire(_ op: OpRecord, _ sums: [Int], channel: (Int) -> Int) -> [UInt32] {
            let size = sums.count / steps
            return (0..<size).map { i in dif(op, channel(i), (0..<steps).map { sums[$0 * size + i] }) }
        }
        /// A stream writer: per-step accumulation `sums[t * N * D + n * D + c]`; step t gets
        /// floor(P[t] / 2^s) - floor(P[t-1] / 2^s) of the running sum P[t] (the bias at t = 0), set or added.
        func write(_ op: OpRecord, _ sums: [Int], tokens n: Int, width d: Int) -> [Int] {
            var x: [Int]
            if op.has(OpFlag.streamSet) {
                x = [Int](repeating: 0, count: n * d * steps)
            } else {
                guard case .stream(let s)? = values[op.output(.spiking)] else { fatalError("no stream to add into") }
                x = s
            }
            for e in 0..<(n * d) {
                let bias = p.i32(op.biases, op.has(OpFlag.tokenBias) ? e : e % d)
                var running = bias, last = 0
                for t in 0..<steps {
                    running += sums[t * n * d + e]
                    let v = running >> Int(op.shift)
                    x[e * steps + t] += v - last
                    last = v
                }
            }
            return x
        }

        for index in 0..<image.opCount {
            let op = image.op(index)
            let i = op.inDims, o = op.outDims
            let weights = (0..<((try? op.weightCount()) ?? 0)).map { p.weight(op, $0) }  // int8 or int16, as Int
            var out: Value? = nil
            switch op.kind! {
            case .conv3x3:
                let (cin, hh, ww, cout) = (i.d0, i.d1, i.d2, o.d0)
                var sums = [Int](repeating: 0, count: steps * cout * hh * ww)  // [t][output]
                // The input at each step: pixels inject everything at t = 0, trains their spikes.
                let input = op.has(OpFlag.inputPixels)  // [t * inputs + input]
                    ? pixels.map { Int($0) } + [Int](repeating: 0, count: pixels.count * (steps - 1))
                    : spikes(trains(at: op.input(.spiking)))
                let inputs = cin * hh * ww, toStream = op.writesStream
                for t in 0..<steps { for c in 0..<cin { for yy in 0..<hh { for xx in 0..<ww {
                    let a = input[t * inputs + (c * hh + yy) * ww + xx]
                    if a == 0 { continue }
                    // scatter: input (yy, xx) is tap (dy, dx) of output (yy - dy + 1, xx - dx + 1)
                    for j in 0..<cout { for dy in 0..<3 { for dx in 0..<3 {
                        let y = yy - dy + 1, x = xx - dx + 1
                        guard y >= 0, y < hh, x >= 0, x < ww else { continue }
                        let product = weights[((j * cin + c) * 3 + dy) * 3 + dx] * a
                        // a stream is token-major [N][D] with token n = y * W + x; counts are [C][H][W]
                        sums[t * cout * hh * ww + (toStream ? (y * ww + x) * cout + j : (j * hh + y) * ww + x)] += product
                    } } }
                } } } }
                if op.writesStream {
                    out = .stream(write(op, sums, tokens: hh * ww, width: cout))
                } else {
                    out = .trains(fire(op, sums) { $0 / (hh * ww) })
                }
            case .linear:
                let (n, din, dout) = (i.d0, i.d1, o.d1)
                let s = spikes(trains(at: op.input(.spiking)))
                var sums = [Int](repeating: 0, count: steps * n * dout)
                let major = op.has(OpFlag.channelMajor)  // trains [Dout][N], else [N][Dout]
                for t in 0..<steps { for tok in 0..<n { for c in 0..<din where s[(t * n + tok) * din + c] == 1 {
                    for j in 0..<dout { sums[t * n * dout + (major ? j * n + tok : tok * dout + j)] += weights[j * din + c] }
                } } }
                out = op.writesStream ? .stream(write(op, sums, tokens: n, width: dout))
                    : .trains(fire(op, sums) { major ? $0 / n : $0 % dout })
            case .maxPool:
                // m_t = max_i C_i(t) - max_i C_i(t - 1), C_i the running count of input i.
                let (c, hh, ww, oh, ow) = (i.d0, i.d1, i.d2, o.d1, o.d2)
                let (k, pad) = op.pool == 2 ? (2, 0) : (3, 1)
                let counts = running(trains(at: op.input(.spiking)))
                var result = [UInt32](repeating: 0, count: c * oh * ow)
                for ch in 0..<c { for oy in 0..<oh { for ox in 0..<ow {
                    var before = 0  // max_i C_i(-1)
                    for t in 0..<steps {
                        var m = 0
                        for dy in 0..<k { for dx in 0..<k {
                            let y = oy * 2 + dy - pad, x = ox * 2 + dx - pad
                            if y >= 0 && y < hh && x >= 0 && x < ww { m = max(m, counts[((t * c + ch) * hh + y) * ww + x]) }
                        } }
                        if m - before == 1 { result[(ch * oh + oy) * ow + ox] |= 1 << UInt32(t) }
                        before = m
                    }
                } } }
                out = .trains(result)
            case .streamNeuron:
                guard case .stream(let x)? = values[op.input(.spiking)] else { fatalError("no stream") }
                let (n, d) = (i.d0, i.d1)
                var sums = [Int](repeating: 0, count: steps * n * d)
                for e in 0..<(n * d) { for t in 0..<steps { sums[t * n * d + e] = x[e * steps + t] } }
                out = .trains(fire(op, sums) { $0 % d })
            case .attentionScores:
                // I[t] = sum over the head's channels of q_t K_t + Q_{t-1} k_t.
                let q = trains(at: op.input(.spiking)), kk = trains(at: op.input2(.spiking))
                let (qs, qc, ks, kc) = (spikes(q), running(q), spikes(kk), running(kk))
                let (n, d, heads) = (i.d0, i.d1, Int(op.heads)), hd = d / heads
                var sums = [Int](repeating: 0, count: steps * heads * n * n)
                for t in 0..<steps { for hh in 0..<heads { for a in 0..<n { for b in 0..<n {
                    var acc = 0
                    for c in (hh * hd)..<((hh + 1) * hd) {
                        let qi = (t * n + a) * d + c, kj = (t * n + b) * d + c  // step t of q[a, c], k[b, c]
                        acc += qs[qi] * kc[kj] + (t > 0 ? qc[qi - n * d] : 0) * ks[kj]
                    }
                    sums[((t * heads + hh) * n + a) * n + b] = acc
                } } } }
                scores = fire(op, sums) { $0 / (n * n) }  // the pair's scores: no arena value (kernel scratch)
            case .attentionValues:
                // I[t] = sum over the keys j of a_t V_t + A_{t-1} v_t (the head of channel c).
                let a = scores, v = trains(at: op.input2(.spiking))
                let (as_, ac, vs, vc) = (spikes(a), running(a), spikes(v), running(v))
                let (n, d, heads) = (o.d0, o.d1, Int(op.heads)), hd = d / heads
                var sums = [Int](repeating: 0, count: steps * n * d)
                for t in 0..<steps { for qi in 0..<n { for c in 0..<d {
                    var acc = 0
                    for j in 0..<n {
                        let aij = ((t * heads + c / hd) * n + qi) * n + j, vj = (t * d + c) * n + j  // step t of a[h(c), qi, j], v[j, c] (v is [D][N])
                        acc += as_[aij] * vc[vj] + (t > 0 ? ac[aij - heads * n * n] : 0) * vs[vj]
                    }
                    sums[(t * n + qi) * d + c] = acc
                } } }
                out = .trains(fire(op, sums) { $0 % d })
            case .classifier:
                // Every input spike (n, c, t) adds w[:, c].
                let s = trains(at: op.input(.spiking)), (n, d, classes) = (i.d0, i.d1, o.d0)
                logits = (0..<classes).map { j in
                    var sum = p.i32(op.biases, j)
                    for tok in 0..<n { for c in 0..<d { sum += weights[j * d + c] * s[tok * d + c].nonzeroBitCount } }
                    return Int32(sum)
                }
            }
            if let value = out {
                values[op.output(.spiking)] = value
                switch value {
                case .trains(let t):
                    outputs.append(t.flatMap { steps <= 8 ? [UInt8($0)] : [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
                case .stream(let x):
                    outputs.append(NaiveModel.int16Bytes(x))
                }
            } else {
                outputs.append(nil)
            }
        }
        return (logits, outputs)
    }
}
