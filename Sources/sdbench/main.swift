import Foundation

// Benchmark groups. `sdbench` alone runs them all; `sdbench networks [options]` runs one (usage on bad options).
var arguments = Array(CommandLine.arguments.dropFirst())
let group = arguments.first.map { $0.hasPrefix("-") ? "networks" : arguments.removeFirst() } ?? "networks"
do {
    switch group {
    case "networks": try NetworkBenchmarks.run(try .init(arguments: arguments))
    default: throw NetworkBenchmarks.BenchmarkError.usage("unknown benchmark group '\(group)'; groups: networks")
    }
} catch {
    FileHandle.standardError.write(Data("sdbench: \(error)\n".utf8))
    exit(2)
}
