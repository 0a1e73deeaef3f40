import CSDFormat
import Foundation

/// A packed image and what the packer knows about it.
public struct PackResult {
    public var image: [UInt8]
    public var conversion: Conversion
    public var fused: ArenaPlan
    public var spiking: ArenaPlan
}

public enum Packer {
    /// Reads an export (model.safetensors + model.json) and packs it.
    public static func convert(weightsPath: String, configPath: String, options: ConvertOptions) throws(PackError) -> PackResult {
        let model = try ExportModel.read(path: configPath)
        let tensors = try SafeTensors.read(path: weightsPath)
        // model.json's tensor list is the file's: the same names, the same shapes
        for (name, shape) in model.tensorShapes.sorted(by: { $0.key < $1.key }) {
            guard let t = tensors[name] else { throw PackError("\(configPath).tensors.\(name): not in \(weightsPath)") }
            guard t.shape == shape else {
                throw PackError("\(configPath).tensors.\(name).shape: \(shape), but \(weightsPath) has \(t.shape)")
            }
        }
        if let extra = tensors.keys.filter({ model.tensorShapes[$0] == nil }).sorted().first {
            throw PackError("\(weightsPath): tensor \(extra) is not listed in \(configPath).tensors")
        }
        let conversion = try Converter.convert(model: model, tensors: tensors, options: options)
        return try pack(conversion, attentionUnits: options.lowRAM)
    }

    /// Plans both arenas, lays out the tensors, builds the image and validates it with the runtime's own checks.
    /// With `attentionUnits` (`csdpack convert --low-ram`) every attention block runs head by head in the fused
    /// plan (docs/FORMAT.md, "Attention units").
    public static func pack(_ unbanded: Conversion, attentionUnits: Bool = false) throws(PackError) -> PackResult {
        var conversion = unbanded
        Banding.apply(&conversion)
        if attentionUnits { Banding.applyAttentionUnits(&conversion) }
        let t = Int(conversion.header.timeSteps)
        let n = conversion.ops.count
        let fusedValues = Banding.fusedValues(conversion)
        let fused = try Planner.plan(fusedValues.values,
                                     scratch: Planner.scratch(conversion.ops, mode: .fused, timeSteps: t),
                                     opCount: n, mode: .fused, timeSteps: t)
        var spiking = try Planner.plan(conversion.values, scratch: Planner.scratch(conversion.ops, mode: .spiking, timeSteps: t),
                                       opCount: n, mode: .spiking, timeSteps: t)
        // spiking: at least the fused plan's need, which a spiking session at D >= T uses (docs/FORMAT.md, "Arena plan")
        spiking.arenaBytes = max(spiking.arenaBytes, fused.arenaBytes)
        var builder = ImageBuilder()
        builder.header = conversion.header
        builder.header.arenaBytes = (UInt32(fused.arenaBytes), UInt32(spiking.arenaBytes))
        for (i, op) in conversion.ops.enumerated() {
            var r = op.record
            r.scratch = (UInt32(fused.scratchOffsets[i]), UInt32(spiking.scratchOffsets[i]))
            func offsets(_ value: Int?, _ fusedValue: Int?) -> (UInt32, UInt32) {
                guard let v = value, let f = fusedValue else { return (0, 0) }
                return (UInt32(fused.offsets[f]), UInt32(spiking.offsets[v]))
            }
            let ids = fusedValues.ids[i]
            r.input = offsets(op.input, ids.input)
            r.input2 = offsets(op.input2, ids.input2)
            r.output = offsets(op.output, ids.output)
            if !op.weights8.isEmpty { r.weights = builder.addTensor(int8: op.weights8) }
            if !op.weights16.isEmpty { r.weights = builder.addTensor(int16: op.weights16) }
            if !op.thresholds.isEmpty { r.thresholds = builder.addTensor(int32: op.thresholds) }
            if !op.biases.isEmpty { r.biases = builder.addTensor(int32: op.biases) }
            builder.append(r)
        }
        let image = builder.build()
        let refusal: CSDStatus? = image.withUnsafeBytes { raw in
            do throws(CSDStatus) {
                _ = try ModelImage(validating: raw)
                return nil
            } catch {
                return error
            }
        }
        if let status = refusal {
            throw PackError("internal error: the packed image fails validation (status \(status.rawValue): \(status.message)); nothing written")
        }
        guard image.count <= Int(UInt32.max) else { throw PackError("the image exceeds 4 GiB") }
        return PackResult(image: image, conversion: conversion, fused: fused, spiking: spiking)
    }
}

/// Writes several files so that either all appear or none does: each goes to a
/// temporary name in its folder first; existing targets are set aside, the
/// temporaries renamed into place, and on any failure everything is rolled back.
public enum AtomicFiles {
    public static func write(_ files: [(path: String, data: Data)]) throws(PackError) {
        let fm = FileManager.default
        for (path, _) in files {
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                throw PackError("\(path): is a directory")
            }
        }
        let suffix = ".tmp-\(getpid())"
        var temps: [String] = []
        for (path, data) in files {
            let temp = path + suffix
            do throws(PackError) { try Files.write(temp, data, reportingAs: path) } catch {
                try? fm.removeItem(atPath: temp)
                for t in temps { try? fm.removeItem(atPath: t) }
                throw error
            }
            temps.append(temp)
        }
        var backups: [(backup: String, original: String)] = []
        var placed: [String] = []
        func rollBack() {
            for p in placed { try? fm.removeItem(atPath: p) }
            for (backup, original) in backups { _ = rename(backup, original) }
            for t in temps { try? fm.removeItem(atPath: t) }
        }
        for (temp, file) in zip(temps, files) {
            if fm.fileExists(atPath: file.path) {
                let backup = file.path + ".old" + suffix
                guard rename(file.path, backup) == 0 else {
                    let why = Files.reason()
                    rollBack()
                    throw PackError("\(file.path): cannot replace the existing file: \(why)")
                }
                backups.append((backup, file.path))
            }
            guard rename(temp, file.path) == 0 else {
                let why = Files.reason()
                rollBack()
                throw PackError("\(file.path): cannot rename the temporary file into place: \(why)")
            }
            placed.append(file.path)
        }
        for (backup, _) in backups { try? fm.removeItem(atPath: backup) }
    }
}
