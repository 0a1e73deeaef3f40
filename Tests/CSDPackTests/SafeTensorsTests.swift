@testable import CSDPack
import Foundation
import Testing

/// Builds a safetensors file from a JSON header and a payload.
func safetensorsFile(header: String, payload: [UInt8]) -> Data {
    let h = Array(header.utf8)
    var bytes: [UInt8] = []
    var n = UInt64(h.count)
    for _ in 0..<8 { bytes.append(UInt8(n & 0xFF)); n >>= 8 }
    return Data(bytes + h + payload)
}

func floatBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v -> [UInt8] in let b = v.bitPattern; return (0..<4).map { UInt8((b >> (8 * UInt32($0))) & 0xFF) } }
}

@Suite struct SafeTensorsTests {
    @Test func readsF32Tensors() throws {
        let data = safetensorsFile(
            header: #"{"__metadata__":{"format":"x"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[],"data_offsets":[16,20]}}"#,
            payload: floatBytes([1, -2, 3.5, 0, 7]))
        let t = try SafeTensors.parse(data, name: "f")
        #expect(t["a"]?.shape == [2, 2] && t["a"]?.values == [1, -2, 3.5, 0])
        #expect(t["b"]?.shape == [] && t["b"]?.values == [7])
    }

    func message(_ data: Data) -> String {
        do { _ = try SafeTensors.parse(data, name: "f"); return "" } catch { return error.message }
    }

    @Test func refusesMalformedFiles() {
        #expect(message(Data([1, 2, 3])).contains("truncated"))
        #expect(message(safetensorsFile(header: "{", payload: [])).contains("not valid JSON"))
        var huge = Data([0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]); huge.append(contentsOf: [0, 0])
        #expect(message(huge).contains("header length"))
        #expect(message(safetensorsFile(header: "[1]", payload: [])).contains("not a JSON object"))
        let f16 = safetensorsFile(header: #"{"w":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}"#, payload: [0, 0])
        #expect(message(f16).contains("tensor w: dtype F16"))
        let short = safetensorsFile(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, payload: [0, 0, 0, 0])
        #expect(message(short).contains("tensor w: data_offsets"))
        let mismatch = safetensorsFile(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, payload: [UInt8](repeating: 0, count: 8))
        #expect(message(mismatch).contains("tensor w: 8 bytes for shape [3]"))
        let absurd = safetensorsFile(header: #"{"w":{"dtype":"F32","shape":[16777216,16777216],"data_offsets":[0,4]}}"#, payload: [0, 0, 0, 0])
        #expect(message(absurd).contains("tensor w: absurd shape"))
        let negative = safetensorsFile(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, payload: [0, 0, 0, 0])
        #expect(message(negative).contains("tensor w: bad shape"))
    }
}
