import CSDFormat

/// What an op is, finer than its kind: the classes the Cortex-M4 rates are measured for.
public enum OpClass: String, CaseIterable {
    case convPixels = "conv3x3_pixels"
    case conv = "conv3x3"
    case convStream = "conv3x3_stream"
    case maxPool = "maxpool"
    case streamNeuron = "stream_neuron"
    case linear = "linear"
    case linearStream = "linear_stream"
    /// The attention pair, both records (they run as one loop at the first: docs/FORMAT.md, "The attention pair").
    case attention = "attention"
    case classifier = "classifier"

    public init?(_ r: OpRecord) {
        switch r.kind {
        case .conv3x3?: self = r.has(OpFlag.inputPixels) ? .convPixels : (r.writesStream ? .convStream : .conv)
        case .linear?: self = r.writesStream ? .linearStream : .linear
        case .maxPool?: self = .maxPool
        case .streamNeuron?: self = .streamNeuron
        case .attentionScores?, .attentionValues?: self = .attention
        case .classifier?: self = .classifier
        case nil: return nil
        }
    }
}

/// The Cortex-M4 instruction rates per op class, measured by the firmware's per-op profile of the reference
/// model (image 0, `make run-m4`; docs/BENCHMARKS.md, "Per-class rates", which this table must equal), and
/// the estimate `csdpack inspect --analyze` makes from them for any image: an estimate, not a measurement.
public enum CortexM4Rates {
    /// Which execution the rate is for: fused, spiking at D >= T (the count path), spiking at D < T (the event path).
    public enum Path: String { case fused, count, event }

    /// The quantity an op's instructions are counted per.
    public enum Unit: String { case mac = "MAC", synapticOp = "synaptic op", inputElement = "input element", element }

    public static func unit(_ c: OpClass, _ path: Path) -> Unit {
        switch c {
        case .maxPool: return .inputElement
        case .streamNeuron: return .element
        case .convPixels: return .mac
        case .classifier where path == .fused: return .inputElement
        default: return path == .fused ? .mac : .synapticOp
        }
    }

    /// Instructions per unit: (fused, count path, event path).
    public static func rates(_ c: OpClass) -> (fused: Double, count: Double, event: Double) {
        switch c {
        case .convPixels: return (4.64, 5.00, 5.00)
        case .maxPool: return (6.59, 7.11, 49.56)
        case .conv: return (1.39, 2.11, 6.94)
        case .convStream: return (1.24, 1.08, 4.50)
        case .streamNeuron: return (13.40, 16.46, 151.11)
        case .linear: return (1.23, 1.64, 6.56)
        case .attention: return (1.86, 6.02, 45.87)
        case .linearStream: return (1.00, 1.08, 5.30)
        case .classifier: return (13.15, 3.60, 3.59)
        }
    }

    /// The quantity of `unit` for one inference of op `r`: MACs and synaptic ops as given (per inference),
    /// elements from the record's dims.
    public static func units(_ unit: Unit, _ r: OpRecord, macs: Double, synapticOps: Double?) -> Double? {
        switch unit {
        case .mac: return macs
        case .synapticOp: return synapticOps
        case .inputElement: return Double(r.inDims.d0 * r.inDims.d1 * r.inDims.d2)
        case .element: return Double(r.outDims.d0 * r.outDims.d1 * r.outDims.d2)
        }
    }

    /// The estimated instructions of op `r` on `path` (nil when it needs synaptic operations and none are given).
    public static func estimate(_ r: OpRecord, path: Path, macs: Double, synapticOps: Double?) -> Double? {
        guard let c = OpClass(r) else { return nil }
        let rate = rates(c)
        let perUnit = path == .fused ? rate.fused : path == .count ? rate.count : rate.event
        return units(unit(c, path), r, macs: macs, synapticOps: synapticOps).map { $0 * perUnit }
    }
}
