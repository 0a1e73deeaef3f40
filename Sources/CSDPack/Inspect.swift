import CSDFormat
import Foundation

/// What `csdpack inspect` reports about an image.
public struct InspectReport {
    public struct Op {
        public var index: Int
        public var kind: String
        public var flags: [String]
        public var shift: Int
        public var inDims: [Int]
        public var outDims: [Int]
        public var heads: Int
        public var weightBytes: Int
        public var thresholdMin: Int32?
        public var thresholdMax: Int32?
        public var macs: Int
        public var arena: [String: [String: Int]]
        /// Bytes of the buffers live while the op runs (docs/FORMAT.md, "Arena plan"), fused and spiking.
        public var liveBytes: (Int, Int) = (0, 0)
        /// Its record and its tensors (weights, thresholds, biases), without alignment padding.
        public var flashBytes: Int = 0
        /// Writes over an input's buffer in both plans (docs/FORMAT.md, "In place"): a square LINEAR over its
        /// input, ATTN_VALUES over the pair's q. (A stream add, in place by definition, shows by its flag.)
        public var inPlace = false
        public var record = OpRecord()
    }

    public var status: Int32
    public var statusMessage: String
    public var header: ImageHeader
    public var crcOK: Bool
    public var ops: [Op]
    /// The largest kernel scratch of any op (fused, spiking); zero when the image is invalid.
    public var scratch: (Int, Int) = (0, 0)
    /// The op with the most live bytes (fused, spiking); the first such op.
    public var peakOp: (Int, Int) = (0, 0)

    static func kindName(_ raw: UInt8) -> String {
        switch OpKind(rawValue: raw) {
        case .conv3x3?: return "conv3x3"
        case .linear?: return "linear"
        case .maxPool?: return "maxpool"
        case .streamNeuron?: return "stream_neuron"
        case .attentionScores?: return "attn_scores"
        case .attentionValues?: return "attn_values"
        case .classifier?: return "classifier"
        case nil: return "unknown(\(raw))"
        }
    }

    /// Whether op `index` of a validated image writes over an input's buffer in both plans (`Op.inPlace`).
    static func writesOverInput(_ image: ModelImage, _ index: Int) -> Bool {
        let r = image.op(index)
        guard r.mayWriteOverInput || r.kind == .attentionValues else { return false }
        let source = r.kind == .attentionValues ? image.op(index - 1) : r  // the pair's q
        return r.output(.fused) == source.input(.fused) && r.output(.spiking) == source.input(.spiking)
    }

    public static func make(_ bytes: [UInt8]) -> InspectReport {
        bytes.withUnsafeBytes { raw in
            guard raw.count >= ImageHeader.size else {
                return InspectReport(status: CSDStatus.tooSmall.rawValue, statusMessage: "\(CSDStatus.tooSmall.message)",
                                     header: ImageHeader(), crcOK: false, ops: [])
            }
            let header = ImageHeader(reading: raw)
            let n = Int(header.imageBytes)
            let crcOK = n >= ImageHeader.size && n <= raw.count
                && CRC32.image(UnsafeRawBufferPointer(rebasing: raw[0..<n])) == header.crc32
            do throws(CSDStatus) {
                let image = try ModelImage(validating: raw)
                var ops: [Op] = []
                let live = (ArenaLiveness.liveBytes(image, mode: .fused), ArenaLiveness.liveBytes(image, mode: .spiking))
                var largest = (0, 0)
                for i in 0..<image.opCount {
                    let r = image.op(i)
                    var flags: [String] = []
                    if r.has(OpFlag.inputPixels) { flags.append("pixels") }
                    if r.has(OpFlag.streamOut) { flags.append(r.has(OpFlag.streamSet) ? "stream_set" : "stream_add") }
                    if r.has(OpFlag.tokenBias) { flags.append("token_bias") }
                    if r.has(OpFlag.channelMajor) { flags.append("channel_major") }
                    if r.band != 0 { flags.append("band\(r.band)") }  // fused: runs band by band with the next op
                    if r.kind == .linear && r.heads != 0 { flags.append("heads\(r.heads)") }  // an attention unit's (fused: one head)
                    var tmin: Int32? = nil, tmax: Int32? = nil
                    for j in 0..<r.thresholdCount {
                        let t = image.data.i32(Int(r.thresholds) + 4 * j)
                        tmin = min(tmin ?? t, t); tmax = max(tmax ?? t, t)
                    }
                    var arena: [String: [String: Int]] = [:]
                    for (mode, name) in [(ExecutionMode.fused, "fused"), (.spiking, "spiking")] {
                        var a: [String: Int] = [:]
                        if r.inputUse.inArena { a["input"] = r.input(mode) }
                        if r.input2Use != nil { a["input2"] = r.input2(mode) }
                        if let use = r.outputUse, use.inArena {
                            a["output"] = r.output(mode)
                            a["output_bytes"] = (try? bufferBytes(use, mode: mode, timeSteps: Int(header.timeSteps))) ?? 0
                        }
                        let scratch = r.scratchBytes(mode, timeSteps: Int(header.timeSteps))
                        if scratch > 0 {
                            a["scratch"] = r.scratch(mode)
                            a["scratch_bytes"] = scratch
                        }
                        if mode == .fused { largest.0 = max(largest.0, scratch) } else { largest.1 = max(largest.1, scratch) }
                        arena[name] = a
                    }
                    let weightBytes = ((try? r.weightCount()) ?? 0) * r.weightElementBytes
                    let flash = OpRecord.size + weightBytes + 4 * r.thresholdCount + 4 * ((try? r.biasCount()) ?? 0)
                    ops.append(Op(index: i, kind: kindName(r.kindRaw), flags: flags, shift: Int(r.shift),
                                  inDims: [r.inDims.d0, r.inDims.d1, r.inDims.d2], outDims: [r.outDims.d0, r.outDims.d1, r.outDims.d2],
                                  heads: Int(r.heads), weightBytes: weightBytes,
                                  thresholdMin: tmin, thresholdMax: tmax, macs: (try? r.macs()) ?? 0, arena: arena,
                                  liveBytes: (live.0[i], live.1[i]), flashBytes: flash,
                                  inPlace: writesOverInput(image, i), record: r))
                }
                return InspectReport(status: 0, statusMessage: "ok", header: header, crcOK: crcOK, ops: ops,
                                     scratch: largest,
                                     peakOp: (ArenaLiveness.peak(live.0), ArenaLiveness.peak(live.1)))
            } catch {
                return InspectReport(status: error.rawValue, statusMessage: "\(error.message)", header: header, crcOK: crcOK, ops: [])
            }
        }
    }

    /// Not a .csd image at all (too small for a header, or another magic): its header fields mean nothing.
    public var isImage: Bool { status != CSDStatus.tooSmall.rawValue && status != CSDStatus.badMagic.rawValue }

    public var text: String {
        guard isImage, !ops.isEmpty else { return headerText }
        return headerText + "\n" + opTableText
    }

    /// The status and header fields.
    public var headerText: String {
        guard isImage else { return "status:          INVALID (\(status): \(statusMessage))\n" }
        let h = header
        // spiking at D >= T with T <= 8 takes the count path, in the fused plan's buffers (docs/FORMAT.md)
        let countPathArena = h.trainBytes == 1 ? "\n                 spiking at D >= T (the count path, the fused plan): \(h.arenaBytes.0)" : ""
        var s = """
        status:          \(status == 0 ? "valid" : "INVALID (\(status): \(statusMessage))")
        format version:  \(h.formatVersion)   math version: \(h.mathVersion)
        crc32:           0x\(String(h.crc32, radix: 16)) (\(crcOK ? "ok" : "MISMATCH"))
        image bytes:     \(h.imageBytes)   tensor bytes: \(h.tensorBytes)   ratio \(String(format: "%.4f", Double(h.imageBytes) / Double(max(1, h.tensorBytes))))
        input:           \(h.inputChannels) x \(h.inputHeight) x \(h.inputWidth) uint8   classes: \(h.classes)
        tokens x width:  \(h.tokens) x \(h.width)
        T / L / D:       \(h.timeSteps) / \(h.levels) / \(h.delay)\(streamShift.map { "\nstream:          int16, stream shift \($0) (the writers' k column)" } ?? "")
        macs:            \(h.macs) per fused inference
        arena bytes:     fused \(h.arenaBytes.0), spiking \(h.arenaBytes.1) (largest kernel scratch \(scratch.0) / \(scratch.1))\(countPathArena)

        """
        if !ops.isEmpty {
            s += "peak live:       fused \(ops[peakOp.0].liveBytes.0) B at op \(peakOp.0) (\(ops[peakOp.0].kind)), "
                + "spiking \(ops[peakOp.1].liveBytes.1) B at op \(peakOp.1) (\(ops[peakOp.1].kind)); buffers and the op's kernel scratch\n"
        }
        return s
    }

    /// The stream writers' shift (docs/SEMANTICS.md, "Stream sinks"): the first writer's.
    public var streamShift: Int? { ops.first { $0.flags.contains("stream_set") || $0.flags.contains("stream_add") }?.shift }

    /// One line per op; live bytes are the buffers live while the op runs and its kernel scratch, `*` marks each mode's peak.
    public var opTableText: String {
        var s = pad("#", 3, right: true) + "  " + pad("kind", 14) + pad("flags", 22) + pad("k", 3) + pad("in", 12)
            + pad("out", 12) + pad("weight B", 9, right: true) + "  " + pad("theta range", 18) + pad("MACs", 9, right: true)
            + pad("live fused", 12, right: true) + pad("live spiking", 14, right: true) + "\n"
        for op in ops {
            let theta = op.thresholdMin.map { "\($0)...\(op.thresholdMax!)" } ?? "-"
            let flags = op.flags + (op.inPlace ? ["in_place"] : [])
            s += pad(op.index, 3, right: true) + "  " + pad(op.kind, 14) + pad(flags.isEmpty ? "-" : flags.joined(separator: ","), 22)
                + pad(op.shift, 3) + pad(op.inDims.map(String.init).joined(separator: "x"), 12)
                + pad(op.outDims.map(String.init).joined(separator: "x"), 12) + pad(op.weightBytes, 9, right: true) + "  "
                + pad(theta, 18) + pad(op.macs, 9, right: true)
                + pad("\(op.liveBytes.0)\(op.index == peakOp.0 ? "*" : " ")", 12, right: true)
                + pad("\(op.liveBytes.1)\(op.index == peakOp.1 ? "*" : " ")", 14, right: true) + "\n"
        }
        return s
    }

    public var json: [String: Any] {
        guard isImage else { return ["status": Int(status), "status_message": statusMessage, "valid": false] }
        let h = header
        return [
            "status": Int(status), "status_message": statusMessage, "valid": status == 0,
            "format_version": Int(h.formatVersion), "math_version": Int(h.mathVersion),
            "crc32": Int(h.crc32), "crc_ok": crcOK,
            "image_bytes": Int(h.imageBytes), "tensor_bytes": Int(h.tensorBytes),
            "arena_bytes": ["fused": Int(h.arenaBytes.0), "spiking": Int(h.arenaBytes.1)],
            "largest_scratch_bytes": ["fused": scratch.0, "spiking": scratch.1],
            "input_shape": [Int(h.inputChannels), Int(h.inputHeight), Int(h.inputWidth)],
            "classes": Int(h.classes), "tokens": Int(h.tokens), "width": Int(h.width),
            "time_steps": Int(h.timeSteps), "levels": Int(h.levels), "delay": Int(h.delay), "macs": Int(h.macs),
            "peak_op": ops.isEmpty ? [:] : ["fused": peakOp.0, "spiking": peakOp.1],
            "stream_shift": streamShift.map { $0 as Any } ?? NSNull(),
            "ops": ops.map { op -> [String: Any] in
                var o: [String: Any] = ["index": op.index, "kind": op.kind, "flags": op.flags, "shift": op.shift,
                                        "in": op.inDims, "out": op.outDims, "weight_bytes": op.weightBytes,
                                        "macs": op.macs, "arena": op.arena, "flash_bytes": op.flashBytes,
                                        "live_bytes": ["fused": op.liveBytes.0, "spiking": op.liveBytes.1],
                                        "in_place": op.inPlace]
                if op.heads > 0 { o["heads"] = op.heads }
                if op.record.band != 0 { o["band"] = Int(op.record.band) }
                if let a = op.thresholdMin, let b = op.thresholdMax { o["threshold_range"] = [Int(a), Int(b)] }
                return o
            },
        ]
    }
}

/// A column of a text table: `v` padded to `n` characters, on the left or (`right`) on the right.
func pad(_ v: Any, _ n: Int, right: Bool = false) -> String {
    let t = "\(v)"
    let fill = String(repeating: " ", count: max(0, n - t.count))
    return right ? fill + t : t + fill
}
