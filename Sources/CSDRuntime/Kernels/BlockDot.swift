import CSDMachine

/// Where the four accumulators of an output go when they are neuron inputs (conv, linear and
/// attention ops with neuron outputs). Output j, row r (rows 0 ..< `rows` are real, the others
/// dropped) has its count at out[j * outputStep + r * rowStep] and its neuron (theta, bias) at
/// index j * paramStep + r * paramRowStep: c = neuronCount((acc << shift) + bias + theta / 2),
/// written as a count or a prefix train; `spikes` sums the counts.
/// Where a block kernel puts the four accumulators of output j.
public protocol BlockSink {
    mutating func put(_ j: Int, _ a0: UInt32, _ a1: UInt32, _ a2: UInt32, _ a3: UInt32)
}

public struct NeuronSink: BlockSink {
    public var out: UnsafeMutablePointer<UInt8>
    public var thresholds: UnsafePointer<Int32>
    public var biases: UnsafePointer<Int32>
    public var outputStep: Int, rowStep: Int
    /// 1 for a neuron per output (conv, linear), 0 for one neuron for all outputs (attention).
    public var paramStep: Int
    /// 1 for a neuron per row (attention values: rows are channels), else 0.
    public var paramRowStep: Int
    public var shift: Int32, levels: Int32
    public var rows: Int
    public var output: NeuronOutput
    public var spikes: UInt32 = 0

    public init(out: UnsafeMutablePointer<UInt8>, thresholds: UnsafePointer<Int32>, biases: UnsafePointer<Int32>,
                outputStep: Int, rowStep: Int, paramStep: Int, paramRowStep: Int, shift: Int32, levels: Int32,
                rows: Int, output: NeuronOutput) {
        self.out = out; self.thresholds = thresholds; self.biases = biases
        self.outputStep = outputStep; self.rowStep = rowStep; self.paramStep = paramStep; self.paramRowStep = paramRowStep
        self.shift = shift; self.levels = levels; self.rows = rows; self.output = output
    }

    @inline(__always) mutating func neuron(_ acc: UInt32, _ e: Int, _ i: Int) {
        let t = thresholds[i]
        let a = (acc &<< (UInt32(truncatingIfNeeded: shift) & 31)) &+ UInt32(bitPattern: biases[i]) &+ UInt32(bitPattern: t &>> 1)
        let c = Kernels.neuronCount(Int32(bitPattern: a), threshold: t, levels: levels)
        out[e] = UInt8(truncatingIfNeeded: output == .prefixTrains ? (1 &<< c) &- 1 : c)
        spikes &+= c
    }

    /// The neurons of output j, rows 0 ..< rows.
    @inline(__always) public mutating func put(_ j: Int, _ a0: UInt32, _ a1: UInt32, _ a2: UInt32, _ a3: UInt32) {
        let e = j &* outputStep, i = j &* paramStep
        neuron(a0, e, i)
        if rows > 1 { neuron(a1, e &+ rowStep, i &+ paramRowStep) }
        if rows > 2 { neuron(a2, e &+ 2 &* rowStep, i &+ 2 &* paramRowStep) }
        if rows > 3 { neuron(a3, e &+ 3 &* rowStep, i &+ 3 &* paramRowStep) }
    }
}

/// How a stream writer's value meets the residual stream: the first writer sets it, later ones add.
public enum StreamWrite {
    case set, add
}

/// Where the four accumulators of an output go when the op writes the residual stream (int16,
/// docs/SEMANTICS.md "Stream sinks"): x[j * outputStep + r * rowStep] = (or +=)
/// (acc + bias[j * paramStep + r * paramRowStep]) >> shift, the sum in wrapping int32, the low 16 bits
/// stored (paramRowStep != 0: per-token biases, the position embedding).
public struct StreamSink: BlockSink {
    public var stream: UnsafeMutablePointer<Int16>
    public var biases: UnsafePointer<Int32>
    public var outputStep: Int, rowStep: Int, paramStep: Int, paramRowStep: Int
    public var rows: Int
    public var write: StreamWrite
    /// The stream shift s (0 ... 24, validated).
    public var shift: Int32

    public init(stream: UnsafeMutablePointer<Int16>, biases: UnsafePointer<Int32>, outputStep: Int, rowStep: Int,
                paramStep: Int, paramRowStep: Int, rows: Int, write: StreamWrite, shift: Int32) {
        self.stream = stream; self.biases = biases; self.outputStep = outputStep; self.rowStep = rowStep
        self.paramStep = paramStep; self.paramRowStep = paramRowStep; self.rows = rows; self.write = write
        self.shift = shift
    }

    @inline(__always) func value(_ acc: UInt32, _ e: Int, _ i: Int) {
        let v = Int32(bitPattern: acc &+ UInt32(bitPattern: biases[i])) &>> shift
        stream[e] = Int16(truncatingIfNeeded: write == .set ? v : Int32(stream[e]) &+ v)
    }

    @inline(__always) public func put(_ j: Int, _ a0: UInt32, _ a1: UInt32, _ a2: UInt32, _ a3: UInt32) {
        let e = j &* outputStep, i = j &* paramStep
        value(a0, e, i)
        if rows > 1 { value(a1, e &+ rowStep, i &+ paramRowStep) }
        if rows > 2 { value(a2, e &+ 2 &* rowStep, i &+ 2 &* paramRowStep) }
        if rows > 3 { value(a3, e &+ 3 &* rowStep, i &+ 3 &* paramRowStep) }
    }
}

extension Kernels {
    /// acc_r = sum_i w[j * wstride + i] * row_r[i], i < k, for every output j < outputs (>= 1), the
    /// four rows of a block in `order`, `neuronOrder(pixels:)` (BlockGather.swift; values 0 ... 255, read as int16
    /// lanes; bytes: counts) against int8 weight rows, wrapping int32, into neurons. Cortex-M4: the assembly
    /// twin csd_neurons_s8_m4 (interleaved blocks); x86-64: `blockDotCountsX86` (bytes), `blockDotNeuronsX86`.
    @inline(never)
    public static func blockDotNeurons(_ w: UnsafePointer<Int8>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                       outputs: Int, order: BlockOrder, _ sink: inout NeuronSink) {
        if useM4Twins {
            blockDotNeuronsM4(w, wstride: wstride, block, k: k, outputs: outputs, &sink)
            return
        }
        #if arch(x86_64)
        if useX86Twins {
            if order == .bytes {
                blockDotCountsX86(w, wstride: wstride, block, k: k, outputs: outputs, &sink)
            } else {
                blockDotNeuronsX86(w, wstride: wstride, block, k: k, outputs: outputs, &sink)
            }
            return
        }
        #endif
        blockDotNeuronsPortable(w, wstride: wstride, block, k: k, outputs: outputs, &sink)
    }

    /// The portable loop (int8 weights, an interleaved block: `neuronOrder` wherever no x86-64 twin runs):
    /// `blockDot`, its lane order a constant.
    public static func blockDotNeuronsPortable(_ w: UnsafePointer<Int8>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                               outputs: Int, _ sink: inout NeuronSink) {
        blockDot(w, wstride: wstride, block, k: k, outputs: outputs, order: .interleaved, &sink)
    }

    /// The same with int16 weights and a natural block, into the stream. Cortex-M4: csd_stream_s16_m4;
    /// x86-64: `blockDotStreamX86`.
    @inline(__always)
    public static func blockDotStream(_ w: UnsafePointer<Int16>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                      outputs: Int, _ sink: StreamSink) {
        if useM4Twins {
            blockDotStreamM4(w, wstride: wstride, block, k: k, outputs: outputs, sink)
            return
        }
        #if arch(x86_64)
        if useX86Twins {
            blockDotStreamX86(w, wstride: wstride, block, k: k, outputs: outputs, sink)
            return
        }
        #endif
        blockDotStreamPortable(w, wstride: wstride, block, k: k, outputs: outputs, sink)
    }

    /// The portable loop (int16 weights, natural block): `blockDot`.
    public static func blockDotStreamPortable(_ w: UnsafePointer<Int16>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                              outputs: Int, _ sink: StreamSink) {
        var s = sink
        blockDot(w, wstride: wstride, block, k: k, outputs: outputs, order: .natural, &s)
    }

    /// The portable block dot, specialized per weight type and sink: per output, the block's lanes read
    /// as halfwords (row r of group g at halfwords 16 g + 4 r; interleaved: values 0, 2, 1, 3), four
    /// multiply-adds per row and group; the K % 4 tail after the group loop (no accumulator spills on
    /// RV32); the four accumulators into the sink.
    @inline(__always)
    static func blockDot<W: FixedWidthInteger & SignedInteger, S: BlockSink>(
        _ w: UnsafePointer<W>, wstride: Int, _ block: UnsafeRawPointer, k: Int, outputs: Int, order: BlockOrder,
        _ sink: inout S
    ) {
        let tail = k & 3, blockEnd = block + (k &>> 2) &* 32, interleaved = order == .interleaved
        var row = w, j = 0
        while j < outputs {
            var a0: UInt32 = 0, a1: UInt32 = 0, a2: UInt32 = 0, a3: UInt32 = 0
            var p = row, x = block
            while x != blockEnd {
                let w0 = Int32(truncatingIfNeeded: p[0]), w3 = Int32(truncatingIfNeeded: p[3])
                let w1 = Int32(truncatingIfNeeded: interleaved ? p[2] : p[1])  // the weight of lane 1
                let w2 = Int32(truncatingIfNeeded: interleaved ? p[1] : p[2])  // of lane 2
                a0 &+= dot4(w0, w1, w2, w3, x)
                a1 &+= dot4(w0, w1, w2, w3, x + 8)
                a2 &+= dot4(w0, w1, w2, w3, x + 16)
                a3 &+= dot4(w0, w1, w2, w3, x + 24)
                p += 4
                x += 32
            }
            if tail != 0 {  // the last 1 ... 3 weights; the block's padding is 0
                let v0 = Int32(truncatingIfNeeded: p[0]), v1 = tail > 1 ? Int32(truncatingIfNeeded: p[1]) : 0
                let v2 = tail > 2 ? Int32(truncatingIfNeeded: p[2]) : 0
                let w1 = interleaved ? v2 : v1, w2 = interleaved ? v1 : v2
                a0 &+= dot4(v0, w1, w2, 0, x)
                a1 &+= dot4(v0, w1, w2, 0, x + 8)
                a2 &+= dot4(v0, w1, w2, 0, x + 16)
                a3 &+= dot4(v0, w1, w2, 0, x + 24)
            }
            sink.put(j, a0, a1, a2, a3)
            row += wstride
            j &+= 1
        }
    }

    /// Four weights against the four lanes (halfwords) at x, in lane order; wrapping.
    @inline(__always) static func dot4(_ w0: Int32, _ w1: Int32, _ w2: Int32, _ w3: Int32, _ x: UnsafeRawPointer) -> UInt32 {
        let x0 = Int32(x.load(as: Int16.self)), x1 = Int32(x.load(fromByteOffset: 2, as: Int16.self))
        let x2 = Int32(x.load(fromByteOffset: 4, as: Int16.self)), x3 = Int32(x.load(fromByteOffset: 6, as: Int16.self))
        return UInt32(bitPattern: w0 &* x0 &+ w1 &* x1 &+ w2 &* x2 &+ w3 &* x3)
    }

    /// Fills the Cortex-M4 routine's struct from the sink (byte offsets, the prefix-train table) and runs it.
    public static func blockDotNeuronsM4(_ w: UnsafePointer<Int8>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                         outputs: Int, _ sink: inout NeuronSink) {
        let rows = sink.rows, rs = Int32(truncatingIfNeeded: sink.rowStep), ps = Int32(truncatingIfNeeded: 4 &* sink.paramRowStep)
        var b = csd_nblock_t()
        b.start.block = block.assumingMemoryBound(to: UInt32.self)
        b.start.groups = Int32(truncatingIfNeeded: k &>> 2)
        b.theta = sink.thresholds
        b.bias = sink.biases
        b.tstep = Int32(truncatingIfNeeded: 4 &* sink.paramStep)
        b.shift = sink.shift
        b.out = sink.out
        b.cstep = Int32(truncatingIfNeeded: sink.outputStep)
        b.words = rows == 4 && rs == 1 ? 1 : 0
        b.levels4 = UInt32(bitPattern: sink.levels) &* (0x0101_0101 &>> UInt32(truncatingIfNeeded: 32 &- 8 &* rows))
        b.spikes = sink.spikes
        b.trains = sink.output == .prefixTrains ? csd_prefix_trains_m4() : nil
        b.wskip = Int32(truncatingIfNeeded: wstride &- (k & ~3))
        b.outputs = Int32(truncatingIfNeeded: outputs)
        b.w = w
        b.tail = Int32(truncatingIfNeeded: k & 3)
        b.per_row = ps != 0 ? 1 : 0
        if rows > 1 { b.row.0 = rs; b.prow.0 = ps }
        if rows > 2 { b.row.1 = 2 &* rs; b.prow.1 = 2 &* ps }
        if rows > 3 { b.row.2 = 3 &* rs; b.prow.2 = 3 &* ps }
        csd_neurons_s8_m4(&b)
        sink.spikes = b.spikes
    }

    public static func blockDotStreamM4(_ w: UnsafePointer<Int16>, wstride: Int, _ block: UnsafeRawPointer, k: Int,
                                        outputs: Int, _ sink: StreamSink) {
        let rows = sink.rows, rs = Int32(truncatingIfNeeded: 2 &* sink.rowStep), ps = Int32(truncatingIfNeeded: 4 &* sink.paramRowStep)
        var b = csd_sblock_t()
        b.start.block = block.assumingMemoryBound(to: UInt32.self)
        b.start.groups = Int32(truncatingIfNeeded: k &>> 2)
        b.stream = sink.stream
        b.bias = sink.biases
        b.cstep = Int32(truncatingIfNeeded: 2 &* sink.outputStep)
        b.pstep = Int32(truncatingIfNeeded: 4 &* sink.paramStep)
        b.set = sink.write == .set ? 1 : 0
        b.wskip = Int32(truncatingIfNeeded: 2 &* (wstride &- (k & ~3)))
        b.outputs = Int32(truncatingIfNeeded: outputs)
        b.w = w
        b.tail = Int32(truncatingIfNeeded: k & 3)
        b.shift = sink.shift
        if rows > 1 { b.row.0 = rs; b.brow.0 = ps }
        if rows > 2 { b.row.1 = 2 &* rs; b.brow.1 = 2 &* ps }
        if rows > 3 { b.row.2 = 3 &* rs; b.brow.2 = 3 &* ps }
        csd_stream_s16_m4(&b)
    }
}
