import CSDFormat
import Foundation

/// What `csdpack inspect --analyze` reports: per op its flash bytes, live arena bytes in each mode, MACs,
/// synaptic operations (spiking, mean over a data sample when one is given) and estimated Cortex-M4
/// instructions (CortexM4Rates); totals and each mode's peak-RAM op.
public struct AnalyzeReport {
    public struct Op {
        public var index: Int
        public var opClass: String
        public var flashBytes: Int
        public var liveBytes: (Int, Int)
        /// Fused MACs (from the record).
        public var macs: Int
        /// Spiking, per inference: MACs (the encoding conv's) and synaptic operations (nil without data).
        public var spikingMacs: Double
        public var synapticOps: Double?
        /// Estimated Cortex-M4 instructions per inference: fused, spiking at `delay` (nil without data where
        /// the op's rate is per synaptic operation).
        public var estimate: (Double?, Double?)
    }

    public var inspect: InspectReport
    public var delay: Int
    /// The spiking path at `delay`: the count path at D >= T, the event path below.
    public var path: CortexM4Rates.Path
    /// The data sample the synaptic operations are the mean over (nil: none given).
    public var sample: (data: String, images: Int)?
    public var ops: [Op]

    /// The report for a valid image; `spiking` is a run at `delay` over the sample, if one was given.
    public static func make(_ inspect: InspectReport, delay: Int, spiking: Verifier.ModeResult?,
                            sample: (data: String, images: Int)?) -> AnalyzeReport {
        let path: CortexM4Rates.Path = delay >= Int(inspect.header.timeSteps) ? .count : .event
        let n = Double(max(1, spiking?.predictions.count ?? 1))
        var ops: [Op] = []
        for op in inspect.ops {
            let r = op.record
            let macs = Double(op.macs)
            let spikingMacs = spiking.map { Double($0.opMacs[op.index]) / n } ?? (r.has(OpFlag.inputPixels) ? macs : 0)
            let synapticOps = spiking.map { Double($0.opSynapticOps[op.index]) / n }
            let fused = CortexM4Rates.estimate(r, path: .fused, macs: macs, synapticOps: nil)
            let spikingEstimate = CortexM4Rates.estimate(r, path: path, macs: spikingMacs, synapticOps: synapticOps)
            ops.append(Op(index: op.index, opClass: OpClass(r)?.rawValue ?? op.kind, flashBytes: op.flashBytes,
                          liveBytes: op.liveBytes, macs: op.macs, spikingMacs: spikingMacs, synapticOps: synapticOps,
                          estimate: (fused, spikingEstimate)))
        }
        return AnalyzeReport(inspect: inspect, delay: delay, path: path, sample: sample, ops: ops)
    }

    /// The sum of `values`, or nil when any is missing.
    static func total(_ values: [Double?]) -> Double? {
        values.reduce(Double?(0)) { a, v in a.flatMap { a in v.map { a + $0 } } }
    }

    public var totals: (flash: Int, macs: Int, spikingMacs: Double, synapticOps: Double?, estimate: (Double?, Double?)) {
        (ops.map(\.flashBytes).reduce(0, +), ops.map(\.macs).reduce(0, +), ops.map(\.spikingMacs).reduce(0, +),
         AnalyzeReport.total(ops.map(\.synapticOps)),
         (AnalyzeReport.total(ops.map(\.estimate.0)), AnalyzeReport.total(ops.map(\.estimate.1))))
    }

    var pathText: String { path == .count ? "count path" : "event path" }

    public var text: String {
        func num(_ v: Double?) -> String { v.map { String(format: "%.0f", $0) } ?? "-" }
        let peak = inspect.peakOp
        var s = inspect.headerText + "\n"
        s += "analyze: spiking at D = \(delay) (\(pathText)); synaptic operations "
        s += sample.map { "per inference, mean over \($0.images) images of \($0.data)\n" } ?? "need data (--data)\n"
        s += pad("#", 3, right: true) + "  " + pad("class", 16) + pad("flash B", 8, right: true)
            + pad("live fused", 12, right: true) + pad("live spiking", 14, right: true) + pad("MACs", 10, right: true)
            + pad("syn ops", 10, right: true) + pad("est M4 fused", 14, right: true) + pad("est M4 spiking", 16, right: true) + "\n"
        for op in ops {
            s += pad(op.index, 3, right: true) + "  " + pad(op.opClass, 16) + pad(op.flashBytes, 8, right: true)
                + pad("\(op.liveBytes.0)\(op.index == peak.0 ? "*" : " ")", 12, right: true)
                + pad("\(op.liveBytes.1)\(op.index == peak.1 ? "*" : " ")", 14, right: true)
                + pad(op.macs, 10, right: true) + pad(num(op.synapticOps), 10, right: true)
                + pad(num(op.estimate.0), 14, right: true) + pad(num(op.estimate.1), 16, right: true) + "\n"
        }
        let t = totals
        s += pad("", 3) + "  " + pad("total", 16) + pad(t.flash, 8, right: true)
            + pad("\(inspect.ops[peak.0].liveBytes.0)*", 12, right: true) + pad("\(inspect.ops[peak.1].liveBytes.1)*", 14, right: true)
            + pad(t.macs, 10, right: true) + pad(num(t.synapticOps), 10, right: true)
            + pad(num(t.estimate.0), 14, right: true) + pad(num(t.estimate.1), 16, right: true) + "\n"
        s += """

        flash: the ops' records and tensors \(t.flash) B of the image's \(inspect.header.imageBytes) B (the rest: header and alignment).
        live: the buffers live while the op runs and its kernel scratch; * marks each mode's peak op (fused: op \(peak.0), \
        spiking: op \(peak.1)); the arena, as planned: \(inspect.header.arenaBytes.0) / \(inspect.header.arenaBytes.1) B.
        est M4: an ESTIMATE, not a measurement: each op's MACs, synaptic operations or elements times its class's \
        Cortex-M4 rate, measured on the reference model; a much narrower model runs up to 8x more (docs/ANALYZE.md).

        """
        return s
    }

    public var json: [String: Any] {
        var j = inspect.json
        let t = totals
        func opt(_ v: Double?) -> Any { v ?? NSNull() }
        j["analyze"] = [
            "delay": delay, "spiking_path": path.rawValue,
            "sample": sample.map { ["data": $0.data, "images": $0.images] as [String: Any] } ?? NSNull(),
            "m4_instructions_are_estimates": true,
            "ops": ops.map { op -> [String: Any] in
                ["index": op.index, "class": op.opClass, "flash_bytes": op.flashBytes,
                 "live_bytes": ["fused": op.liveBytes.0, "spiking": op.liveBytes.1],
                 "macs": op.macs, "spiking_macs": op.spikingMacs, "synaptic_ops": opt(op.synapticOps),
                 "m4_instructions_estimate": ["fused": opt(op.estimate.0), "spiking": opt(op.estimate.1)]]
            },
            "totals": ["flash_bytes": t.flash, "macs": t.macs, "spiking_macs": t.spikingMacs, "synaptic_ops": opt(t.synapticOps),
                       "m4_instructions_estimate": ["fused": opt(t.estimate.0), "spiking": opt(t.estimate.1)],
                       "peak_live_bytes": ["fused": inspect.ops[inspect.peakOp.0].liveBytes.0,
                                           "spiking": inspect.ops[inspect.peakOp.1].liveBytes.1]],
        ] as [String: Any]
        return j
    }
}
