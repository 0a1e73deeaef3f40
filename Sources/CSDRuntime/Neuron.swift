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

/// Per-step input currents of one neuron, t = 0 ..< T (T <= 16): 16 int32 in the arena's spiking
/// scratch (docs/FORMAT.md, "Kernel scratch").
@usableFromInline typealias Currents = UnsafeMutablePointer<Int32>

/// The input rows y0..<y1 and columns x0..<x1 of one max-pool window (pool 2: 2x2, stride 2;
/// pool 3: 3x3, stride 2, padding 1), clipped to the image.
@usableFromInline struct PoolWindow {
    @usableFromInline let y0: Int, y1: Int, x0: Int, x1: Int

    @inlinable init(_ op: OpRecord, oy: Int, ox: Int, h: Int, w: Int) {
        let size = Int(op.pool), pad = op.pool == 3 ? 1 : 0
        let top = oy &* 2 &- pad, left = ox &* 2 &- pad
        y0 = max(top, 0); y1 = min(top &+ size, h)
        x0 = max(left, 0); x1 = min(left &+ size, w)
    }
}
