#if canImport(Glibc)
import Glibc
#endif

/// The signature of `LLVMFuzzerTestOneInput`: one input's bytes; returns 0 (-1 keeps the input
/// out of the corpus).
public typealias FuzzTest = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

// libFuzzer's own entry point (compiler-rt, libclang_rt.fuzzer_no_main), as a library call.
// SwiftPM links an executable target's `main` under the name `<module>_main` and makes `main` an
// alias of it; libclang_rt.fuzzer's `main` would then be defined twice. So each target keeps a
// Swift `main` and hands its test function to the driver, which parses libFuzzer's usual options.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ test: FuzzTest
) -> CInt

/// Runs libFuzzer over `test` with the process's arguments, then exits with its status.
public func runFuzzer(_ test: FuzzTest) -> Never {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, test))
}

/// The input as an array (decoders take arrays or `Data`).
public func bytes(_ start: UnsafePointer<UInt8>?, _ count: Int) -> [UInt8] {
    guard let start, count > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: start, count: count))
}
