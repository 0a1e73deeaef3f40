import CSDFormat
import CSDKernels

/// Integer neuron parameters of one output neuron (docs/SEMANTICS.md section 2).
/// All arithmetic wraps: a validated image from the packer never overflows
/// (the packer proves it), and a hostile one must not trap.
@usableFromInline struct Neuron {
    @usableFromInline var threshold: Int32
    @usableFromInline var bias: Int32
    @usableFromInline var shift: Int32
    @usableFromInline var levels: Int32

    @inlinable init(threshold: Int32, bias: Int32, shift: Int32, levels: Int32) {
        self.threshold = threshold; self.bias = bias; self.shift = shift; self.levels = levels
    }

    /// v0 = floor(theta / 2): the QCFS +1/2.
    @inlinable var initialMembrane: Int32 { threshold >> 1 }

    /// Fused: clip(floor((acc << k + beta + v0) / theta), 0, L); the division is `csd_count`
    /// (C: one SDIV without Swift's trap paths; theta >= 1 is validated).
    @inlinable func count(_ acc: Int32) -> UInt8 {
        csd_count((acc &<< shift) &+ bias &+ initialMembrane, threshold, levels)
    }
}
