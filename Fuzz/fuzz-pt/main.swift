// libFuzzer target: each input is written as a torch.save (.pt) file and read as a dump (see FuzzHarness).
import AttnFuzzHarness
import Glibc

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzHarness.run(data ?? UnsafePointer(bitPattern: 1)!, size, suffix: ".pt")
    return 0
}

// SwiftPM gives every executable its own main: it hands over to libFuzzer's driver.
exit(FuzzHarness.runDriver(fuzzOneInput))
