import CSDMachine

/// The runtime's kernels: plain Embedded Swift loops, one file per family (docs/KERNELS.md). Each
/// states its tensor layout and value ranges. Arithmetic on values wraps (`&+`, `&*`): a validated
/// image from the packer never overflows (the packer proves it) and a hostile one must not trap;
/// index arithmetic wraps too, on shapes the validator bounded. Where a Cortex-M4 assembly twin
/// exists (CSDMachine: csd_block_m4.h, csd_event_m4.h), `CSD_KERNELS_DSP` selects it at build time;
/// likewise `CSD_KERNELS_X86` the x86-64 twin of the block dot (BlockDotX86.swift).
public enum Kernels {
    /// Whether this build runs the Cortex-M4 twins: `CSD_KERNELS_DSP` of CSDMachine (cores with the DSP
    /// extension). A constant, so the branches it selects fold at compile time.
    @inline(__always) static var useM4Twins: Bool { CSD_KERNELS_DSP != 0 }
    /// Whether this build runs the x86-64 twin of the block dot (BlockDotX86.swift): `CSD_KERNELS_X86`.
    @inline(__always) static var useX86Twins: Bool { CSD_KERNELS_X86 != 0 }
}

/// How a spike train is stored in the arena: one bit per step (bit t: a spike at step t), uint8
/// for T <= 8 and uint16 for T <= 16 (docs/FORMAT.md).
public enum TrainWidth {
    case bits8, bits16

    @inlinable public var bytes: Int { self == .bits16 ? 2 : 1 }
}

/// Spikes of each byte value: two loads count a uint16 train (as C's table did; no popcount
/// instruction on RV32IMAC or ARMv6-M).
@usableFromInline let spikesPerByte: InlineArray<256, UInt8> = [
    0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 1, 2, 2, 3, 2, 3, 3, 4, 2, 3, 3, 4, 3, 4, 4, 5,
    1, 2, 2, 3, 2, 3, 3, 4, 2, 3, 3, 4, 3, 4, 4, 5, 2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6,
    1, 2, 2, 3, 2, 3, 3, 4, 2, 3, 3, 4, 3, 4, 4, 5, 2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6,
    2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6, 3, 4, 4, 5, 4, 5, 5, 6, 4, 5, 5, 6, 5, 6, 6, 7,
    1, 2, 2, 3, 2, 3, 3, 4, 2, 3, 3, 4, 3, 4, 4, 5, 2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6,
    2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6, 3, 4, 4, 5, 4, 5, 5, 6, 4, 5, 5, 6, 5, 6, 6, 7,
    2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6, 3, 4, 4, 5, 4, 5, 5, 6, 4, 5, 5, 6, 5, 6, 6, 7,
    3, 4, 4, 5, 4, 5, 5, 6, 4, 5, 5, 6, 5, 6, 6, 7, 4, 5, 5, 6, 5, 6, 6, 7, 5, 6, 6, 7, 6, 7, 7, 8,
]

extension Kernels {
    /// Spikes among the low 16 bits of `train`.
    @inline(__always) static func spikes(_ train: UInt32) -> UInt32 {
        UInt32(spikesPerByte[Int(train & 255)]) &+ UInt32(spikesPerByte[Int((train &>> 8) & 255)])
    }

    /// The train of element `i` of `trains` (uint8 or uint16).
    @inline(__always) static func train(_ trains: UnsafeRawPointer, _ width: TrainWidth, _ i: Int) -> UInt32 {
        width == .bits16 ? UInt32(trains.load(fromByteOffset: i &* 2, as: UInt16.self))
                         : UInt32(trains.load(fromByteOffset: i, as: UInt8.self))
    }

    /// Writes the train of element `i` (its low 8 or 16 bits).
    @inline(__always) static func setTrain(_ trains: UnsafeMutableRawPointer, _ width: TrainWidth, _ i: Int, _ train: UInt32) {
        if width == .bits16 {
            trains.storeBytes(of: UInt16(truncatingIfNeeded: train), toByteOffset: i &* 2, as: UInt16.self)
        } else {
            trains.storeBytes(of: UInt8(truncatingIfNeeded: train), toByteOffset: i, as: UInt8.self)
        }
    }
}
