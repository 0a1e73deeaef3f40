import CSDFormat
import CSDHeader
import Testing

/// The status numbers come from Include/csd.h (CSDHeader); the texts are one NUL-separated table.
@Suite struct StatusTests {
    @Test func everyCodeOfTheHeaderHasItsOwnText() {
        let last = CSD_E_PATH  // the header's last code
        var seen = Set<String>()
        for code in stride(from: CSD_OK, through: last, by: -1) {
            let text = CSDStatus(code).message
            #expect(text != "unknown status", "status \(code)")
            #expect(!text.isEmpty, "status \(code)")
            seen.insert(text)
        }
        #expect(seen.count == Int(-last) + 1)  // distinct: the table is not shifted
        #expect(CSDStatus.ok.message == "ok")
        #expect(CSDStatus.nullArgument.message == "null argument")
        #expect(CSDStatus.crc.message == "CRC-32 mismatch")
        #expect(CSDStatus(-27).message == "session not initialized")
        #expect(CSDStatus.session.message == "session not initialized")
        #expect(CSDStatus(-28).message == "buffer ends past the arena")
        #expect(CSDStatus.arenaEnd.message == "buffer ends past the arena")
        #expect(CSDStatus.arenaPlan.message == "bad arena plan" && CSDStatus.arenaBytes.message == "arena size mismatch")
        #expect(CSDStatus(last - 1).message == "unknown status")
        #expect(CSDStatus(-29).message == "stats array not 4-byte aligned")
        #expect(CSDStatus.statsAlignment.message == "stats array not 4-byte aligned")
        #expect(CSDStatus(-30).message == "unknown spiking path")
        #expect(CSDStatus.path.message == "unknown spiking path")
        #expect(CSDStatus(-31).message == "unknown status")
        #expect(CSDStatus(1).message == "unknown status")
        #expect(CSDStatus(.min).message == "unknown status")
        #expect(CSDStatus(.max).message == "unknown status")
    }

    @Test func namedStatusesAreTheHeaderMacros() {
        #expect(CSDStatus.ok.rawValue == CSD_OK)
        #expect(CSDStatus.nullArgument.rawValue == CSD_E_NULL_ARGUMENT && CSD_E_NULL_ARGUMENT == -1)
        #expect(CSDStatus.imageAlignment.rawValue == CSD_E_IMAGE_ALIGNMENT && CSD_E_IMAGE_ALIGNMENT == -20)
        #expect(CSDStatus.session.rawValue == CSD_E_SESSION && CSD_E_SESSION == -27)
        #expect(CSDStatus.arenaPlan.rawValue == CSD_E_ARENA_PLAN && CSD_E_ARENA_PLAN == -16)
        #expect(CSDStatus.arenaBytes.rawValue == CSD_E_ARENA_BYTES && CSD_E_ARENA_BYTES == -17)
        #expect(CSDStatus.arenaEnd.rawValue == CSD_E_ARENA_END && CSD_E_ARENA_END == -28)  // appended: no code renumbered
        #expect(CSDStatus.statsAlignment.rawValue == CSD_E_STATS_ALIGNMENT && CSD_E_STATS_ALIGNMENT == -29)
        #expect(CSDStatus.path.rawValue == CSD_E_PATH && CSD_E_PATH == -30)
    }
}
