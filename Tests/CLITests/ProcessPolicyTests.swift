import Testing
import CAttnProcess

@Suite("Process-wide policy set by the executable")
struct ProcessPolicyTests {
    /// memory.c tested `__GLIBC__` before including any libc header, so the tuning compiled to nothing without a
    /// word (medium Q/K took 8% longer, with 20 times the page faults).
    @Test("the malloc tuning is compiled in on glibc (a header order once compiled it out)")
    func mallocTuningCompiledIn() {
        #if canImport(Glibc)
            #expect(cattn_keep_freed_memory() == 1)
        #endif
    }
}
