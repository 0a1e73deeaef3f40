/// The energy estimate the SNN literature uses to compare a spiking network with its ANN: operation
/// counts priced at 45 nm CMOS figures (Horowitz, ISSCC 2014, as quoted by Spikformer, Spike-driven
/// Transformer and CSDformer): 4.6 pJ per multiply-accumulate, 0.9 pJ per accumulate. An estimate of
/// what a neuromorphic or custom implementation would spend on the arithmetic alone (no memory traffic,
/// no control), not a measurement of this runtime on a microcontroller: on the count path (D >= T) the
/// runtime multiplies counts by weights, and on every path a Cortex-M spends instructions per operation
/// (the firmware benchmark measures those).
public enum EnergyEstimate {
    /// Picojoules per multiply-accumulate (the fused model's MACs; the spiking model's encoding layer).
    public static let picojoulesPerMAC = 4.6
    /// Picojoules per accumulate (a synaptic operation of the spiking model).
    public static let picojoulesPerAccumulate = 0.9

    /// The estimate for `macs` multiply-accumulates and `synapticOps` accumulates.
    public static func picojoules(macs: Double, synapticOps: Double) -> Double {
        macs * picojoulesPerMAC + synapticOps * picojoulesPerAccumulate
    }
}

extension Verifier.ModeResult {
    /// The estimate per inference, mean over the run: the MACs (fused: every layer; spiking: the
    /// encoding layer, which reads pixels) and the synaptic operations (spiking) the runtime counted.
    public var energyEstimatePicojoules: Double {
        let n = Double(max(1, predictions.count))
        return EnergyEstimate.picojoules(macs: Double(macs) / n, synapticOps: Double(synapticOps) / n)
    }

    /// The same per op (they sum to `energyEstimatePicojoules`).
    public var opEnergyEstimatePicojoules: [Double] {
        let n = Double(max(1, predictions.count))
        return zip(opMacs, opSynapticOps).map { EnergyEstimate.picojoules(macs: Double($0) / n, synapticOps: Double($1) / n) }
    }
}
