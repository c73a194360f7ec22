import Foundation
import FuzzSupport
import ZonegateEngine

// Bytes -> an inventory file (`--inventory FILE` of matrix, explain and plan).
runFuzzer { start, count in
    _ = try? Inventory.decode(Data(bytes(start, count)))
    return 0
}
