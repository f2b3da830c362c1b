import Foundation

// Benchmark groups. `sdbench` alone runs them all (ops, then networks); `sdbench ops` or
// `sdbench networks [options]` runs one (usage on bad options).
var arguments = Array(CommandLine.arguments.dropFirst())
let group = arguments.first.map { $0.hasPrefix("-") ? "all" : arguments.removeFirst() } ?? "all"
do {
    let options = try NetworkBenchmarks.Options(arguments: arguments)
    switch group {
    case "ops":
        OpsBenchmarks.run(referencePython: options.referencePython, threads: options.torchThreads,
                          repeats: options.repeats)
    case "networks": try NetworkBenchmarks.run(options)
    case "all":
        OpsBenchmarks.run(referencePython: options.referencePython, threads: options.torchThreads,
                          repeats: options.repeats)
        try NetworkBenchmarks.run(options)
    default:
        throw NetworkBenchmarks.BenchmarkError.usage("unknown benchmark group '\(group)'; groups: all, ops, networks")
    }
} catch {
    FileHandle.standardError.write(Data("sdbench: \(error)\n".utf8))
    exit(2)
}
