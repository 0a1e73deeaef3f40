@testable import CSDRuntime
import CSDFormat
import CSDHeader
import Testing

/// The C exports keep a `SessionState` in the caller's opaque `csd_session_t`; Embedded Swift has no
/// static assert, so the fit is checked here (the host is a 64-bit target: pointers and UInt are 8
/// bytes; on 32-bit targets every word field is 4 bytes, so the state is smaller and 4-aligned).
@Suite struct SessionStateTests {
    @Test func theStateFitsTheOpaqueSession() {
        #expect(MemoryLayout<csd_session_t>.size == 96)
        #expect(MemoryLayout<csd_session_t>.alignment == 8)
        #expect(MemoryLayout<SessionState>.size <= MemoryLayout<csd_session_t>.size)
        #expect(MemoryLayout<SessionState>.alignment <= MemoryLayout<csd_session_t>.alignment)
        #expect(MemoryLayout<SessionState>.size == 72)  // 4 + 4 + 1 + 1, padding to 16, 7 words
        // The same sum with 4-byte words (32-bit targets): 12 + 7 * 4 = 40 <= 96.
        #expect(MemoryLayout<csd_op_stats_t>.stride == 20)
        #expect(MemoryLayout<csd_model_info_t>.size == 40)
    }

    @Test func exportsKeepTheirStatuses() throws {
        let packed = try RandomModel.make(seed: 7)
        let harness = try Harness(packed.image)
        let image = UnsafeRawPointer(harness.imageStorage.baseAddress!), size = UInt(harness.imageStorage.count)
        var info = csd_model_info_t()
        #expect(exportModelCheck(image, size, &info) == CSD_OK)
        #expect(info.image_bytes == harness.image.header.imageBytes && info.op_count == harness.image.header.opCount)
        #expect(info.classes == harness.image.header.classes && info.reserved == 0)
        let need = Int(info.arena_bytes_spiking)
        let arena = UnsafeMutableRawPointer.allocate(byteCount: max(need, 16), alignment: 16)
        defer { arena.deallocate() }
        var s = csd_session_t()
        let fusedNeed = UInt(info.arena_bytes_fused)
        #expect(exportSessionInit(&s, image, size, arena, fusedNeed - 1, CSD_MODE_SPIKING) == CSD_E_ARENA_TOO_SMALL)
        #expect(exportSessionSetDelay(&s, 0) == CSD_E_SESSION)  // a failed init leaves it unusable
        // below the spiking need: enough for the count path alone (T <= 8, the default delay >= T)
        let countPathOnly = info.time_steps <= 8 && info.delay >= info.time_steps && UInt(need) - 1 >= fusedNeed
        #expect(countPathOnly)  // this model exercises it
        #expect(exportSessionInit(&s, image, size, arena, UInt(need) - 1, CSD_MODE_SPIKING) == CSD_OK)
        #expect(exportSessionSetDelay(&s, UInt32(info.time_steps) - 1) == CSD_E_ARENA_TOO_SMALL)
        #expect(exportSessionSetPath(&s, CSD_PATH_EVENT) == CSD_E_ARENA_TOO_SMALL)
        #expect(exportSessionSetDelay(&s, UInt32(info.time_steps)) == CSD_OK)
        #expect(exportSessionInit(&s, image, size, arena, UInt(need), CSD_MODE_SPIKING) == CSD_OK)
        #expect(exportSessionSetDelay(&s, UInt32(info.time_steps) + 1) == CSD_E_DELAY)
        #expect(exportSessionSetDelay(&s, 256) == CSD_E_DELAY)
        #expect(exportSessionSetDelay(&s, UInt32(info.time_steps)) == CSD_OK)
        var stats = [csd_op_stats_t](repeating: csd_op_stats_t(), count: Int(info.op_count) + 1)
        try stats.withUnsafeMutableBufferPointer { st in
            let misaligned = UnsafeMutableRawPointer(st.baseAddress!).advanced(by: 2).assumingMemoryBound(to: csd_op_stats_t.self)
            #expect(exportSessionSetStats(&s, misaligned, 1) == CSD_E_STATS_ALIGNMENT)
            #expect(exportSessionSetStats(&s, nil, 1) == CSD_E_NULL_ARGUMENT)
            #expect(exportSessionSetStats(&s, st.baseAddress, info.op_count) == CSD_OK)
            let pixels = RandomModel.pixels(count: Int(info.input_channels) * Int(info.input_height) * Int(info.input_width), seed: 7)
            var logits = [Int32](repeating: 0, count: Int(info.classes))
            #expect(exportSessionRun(&s, pixels, UInt(pixels.count), &logits, UInt(logits.count)) == CSD_OK)
            let expected = try harness.run(pixels, mode: .spiking, delay: Int(info.time_steps))
            #expect(logits == expected.logits)
            for (i, e) in expected.stats.enumerated() {
                #expect(st[i].kind == e.kind && st[i].spikes == e.spikes && st[i].synaptic_ops == e.synapticOps && st[i].macs == e.macs)
            }
            #expect(st[Int(info.op_count)].kind == 0)  // nothing past capacity
        }
        #expect(String(cString: exportStatusStr(CSD_E_SESSION)) == "session not initialized")
    }
}
