import FuzzSupport
import ZonegatePolicy

// Bytes -> policy files -> parse and validate (what `check` and every reload of `run` do before
// the prover). NUL bytes split the input into files (a NUL is never valid in a policy file):
// `00.yaml`, `01.yaml`, ... so that references across files and duplicate names are reached.
runFuzzer { start, count in
    let input = bytes(start, count)
    let files = input.split(separator: 0, omittingEmptySubsequences: false).prefix(16).enumerated().map { index, part in
        PolicyFile(name: (index < 10 ? "0" : "") + "\(index).yaml", bytes: Array(part))
    }
    _ = try? PolicyParser.parse(files)
    return 0
}
