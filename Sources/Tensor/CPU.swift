import CKernels
import Foundation

// The processor the engine runs on, the kernels it chose, and how OpenBLAS's kernels compare with what the
// processor can do. CPUID is read in one place, CKernels' ck_cpu (cpu.c).

/// The widest vector instructions a processor offers (with the operating system's support) or a set of kernels uses.
public enum VectorLevel: Int, Sendable, Comparable, CustomStringConvertible {
    case sse = 0, avx, avx2, avx512

    public static func < (a: VectorLevel, b: VectorLevel) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .sse: "SSE"
        case .avx: "AVX"
        case .avx2: "AVX2+FMA"
        case .avx512: "AVX-512"
        }
    }
}

/// What CPUID says about the processor.
public struct CPUInfo: Sendable {
    /// The brand string (e.g. "Intel(R) Xeon(R) Processor"), or the vendor when the processor has none.
    public var brand: String
    public var vendor: String
    public var family: Int
    public var model: Int
    /// The vector instruction sets the processor and the operating system support, e.g. ["SSE4.2", "AVX2", "FMA",
    /// "AVX-512F", "AVX-512BW"].
    public var features: [String]
    /// AVX-512 needs F, BW and VL (what OpenBLAS's SkylakeX kernels use); AVX2 needs FMA as well.
    public var vectorLevel: VectorLevel

    /// This machine's processor (read once).
    public static let current = CPUInfo(ck_cpu().pointee)

    init(_ c: ck_cpu_info) {
        func text<T>(_ tuple: T) -> String {
            withUnsafeBytes(of: tuple) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            }
        }
        vendor = text(c.vendor)
        let name = text(c.brand)
        brand = name.isEmpty ? (vendor.isEmpty ? "unknown processor" : vendor) : name
        family = Int(c.family)
        model = Int(c.model)
        let names: [(UInt32, String)] = [
            (UInt32(CK_CPU_SSE2), "SSE2"), (UInt32(CK_CPU_SSE3), "SSE3"), (UInt32(CK_CPU_SSSE3), "SSSE3"),
            (UInt32(CK_CPU_SSE41), "SSE4.1"), (UInt32(CK_CPU_SSE42), "SSE4.2"), (UInt32(CK_CPU_AVX), "AVX"),
            (UInt32(CK_CPU_AVX2), "AVX2"), (UInt32(CK_CPU_FMA), "FMA"), (UInt32(CK_CPU_AVX512F), "AVX-512F"),
            (UInt32(CK_CPU_AVX512DQ), "AVX-512DQ"), (UInt32(CK_CPU_AVX512CD), "AVX-512CD"),
            (UInt32(CK_CPU_AVX512BW), "AVX-512BW"), (UInt32(CK_CPU_AVX512VL), "AVX-512VL"),
            (UInt32(CK_CPU_AVX512VNNI), "AVX-512VNNI"), (UInt32(CK_CPU_AVX512BF16), "AVX-512BF16"),
            (UInt32(CK_CPU_AVX512FP16), "AVX-512FP16"),
        ]
        features = names.filter { c.features & $0.0 != 0 }.map(\.1)
        let bits = Int(c.features)
        func has(_ wanted: Int...) -> Bool { wanted.allSatisfy { bits & $0 != 0 } }
        vectorLevel = has(CK_CPU_AVX512F, CK_CPU_AVX512BW, CK_CPU_AVX512VL) ? .avx512
            : has(CK_CPU_AVX2, CK_CPU_FMA) ? .avx2 : has(CK_CPU_AVX) ? .avx : .sse
    }

    /// "Intel(R) Xeon(R) Processor (family 6, model 207)".
    public var name: String { family == 0 ? brand : "\(brand) (family \(family), model \(model))" }

    /// Features in short: "SSE2 ... AVX2 FMA AVX-512F/DQ/CD/BW/VL/VNNI/BF16/FP16".
    public static func summary(_ features: [String]) -> String {
        let plain = features.filter { !$0.hasPrefix("AVX-512") }
        let wide = features.filter { $0.hasPrefix("AVX-512") }.map { $0.dropFirst("AVX-512".count) }
        return (plain + (wide.isEmpty ? [] : ["AVX-512" + wide.joined(separator: "/")])).joined(separator: " ")
    }
}

/// The engine's own kernels in use (CKernels), chosen at run time from what the processor can do (CPUID, never the
/// build machine): AVX-512 (F/BW/VL/DQ), else AVX2 with FMA, else the portable ones. DETR_TUI_NO_AVX512=1 forces
/// AVX2 (on a processor that has it), DETR_TUI_NO_AVX2=1 the portable ones.
public enum KernelSet: String, Sendable, CaseIterable {
    case avx512 = "AVX-512"
    case avx2 = "AVX2"
    case portable

    /// The set in use (decided once).
    public static let active: KernelSet = {
        let env = ProcessInfo.processInfo.environment
        if env["DETR_TUI_NO_AVX2"] != nil || !KernelSet.avx2.isSupported { return .portable }
        if env["DETR_TUI_NO_AVX512"] != nil || !KernelSet.avx512.isSupported { return .avx2 }
        return .avx512
    }()

    /// Whether this process may run the set: the processor has it and the environment did not turn it off (the
    /// active set or a narrower one).
    public var isEnabled: Bool {
        let order: [KernelSet] = [.portable, .avx2, .avx512]
        return order.firstIndex(of: self)! <= order.firstIndex(of: KernelSet.active)!
    }

    /// Whether this processor (and its operating system) runs the set, whatever the environment asks for.
    public var isSupported: Bool {
        switch self {
        case .avx512: ck_has_avx512() != 0
        case .avx2: ck_has_avx2_fma() != 0
        case .portable: true
        }
    }
}

/// Whether the active kernels are AVX2/FMA or wider (checked once): the AVX-512 set keeps the AVX2 kernels it has no
/// version of its own for.
let hasAVX2FMA = KernelSet.active != .portable

/// Whether the active kernels are AVX-512.
let hasAVX512 = KernelSet.active == .avx512

extension BLASLibrary {
    /// The vector level of an OpenBLAS x86-64 core's kernels (the names of its driver/others/dynamic.c), or nil for
    /// a name not listed here (then nothing is judged).
    public static func level(ofCore name: String) -> VectorLevel? {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": .avx512
        case "haswell", "zen", "excavator": .avx2
        case "sandybridge", "bulldozer", "piledriver", "steamroller": .avx
        case "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington",
             "nehalem", "athlon", "opteron", "opteron(sse3)", "barcelona", "nano", "bobcat": .sse
        default: nil
        }
    }

    /// The core to ask OpenBLAS for on a processor at `level`: SkylakeX for AVX-512, Haswell for AVX2.
    public static func core(for level: VectorLevel) -> String? {
        switch level {
        case .avx512: "SkylakeX"
        case .avx2: "Haswell"
        case .avx, .sse: nil
        }
    }

    /// The core OpenBLAS should use instead of `current` on a processor at `cpu`: nil when `current` is as wide as the
    /// processor allows (or wider), or a name this table does not know.
    public static func betterCore(than current: String, cpu: VectorLevel) -> String? {
        guard let have = level(ofCore: current), let want = core(for: cpu), have < cpu else { return nil }
        return want
    }
}

/// The machine a benchmark ran on, as `bench ops` and `bench MODEL` report it.
public struct MachineReport: Sendable, Codable {
    /// The processor's brand string, family and model.
    public var cpu: String
    /// Its vector instruction sets (those the operating system enables too).
    public var features: [String]
    /// The OpenBLAS kernels in use, as the library reports them.
    public var blasCore: String
    /// The OpenBLAS kernels this processor supports (SkylakeX, Haswell), when they are wider than `blasCore`'s.
    public var blasCoreForCPU: String?
    /// The library's build (openblas_get_config).
    public var blasBuild: String
    /// The core OpenBLAS had chosen itself, when detr-tui restarted with OPENBLAS_CORETYPE set to a better one.
    public var blasCoreAtLoad: String?
    /// The engine's own kernels: AVX-512, AVX2 or portable.
    public var kernels: String
    /// Threads of the engine's parallel loops.
    public var threads: Int
    /// One line when the OpenBLAS kernels are narrower than the processor's vectors.
    public var warning: String?

    /// The report for this process; `blasCoreAtLoad`: see the property.
    public static func current(blasCoreAtLoad: String? = nil) -> MachineReport {
        let cpu = CPUInfo.current, core = BLASLibrary.coreName
        let better = BLASLibrary.betterCore(than: core, cpu: cpu.vectorLevel)
        var warning: String?
        if let better {
            let why: String
            if blasCoreAtLoad != nil {
                why = "it did not take OPENBLAS_CORETYPE=\(better) at start-up"
            } else if let forced = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] {
                why = "OPENBLAS_CORETYPE=\(forced) is set; without it detr-tui chooses \(better)"
            } else if !BLASLibrary.choosesCoreAtLoad {
                why = "this OpenBLAS build has no other kernels (not DYNAMIC_ARCH); one that has would run \(better)"
            } else {
                why = "set OPENBLAS_CORETYPE=\(better)"
            }
            warning = "warning: OpenBLAS runs its \(core) kernels on a CPU with \(cpu.vectorLevel) (\(why)): matrix products run slower"
        }
        return MachineReport(cpu: cpu.name, features: cpu.features, blasCore: core, blasCoreForCPU: better,
                             blasBuild: BLASLibrary.configuration, blasCoreAtLoad: blasCoreAtLoad, kernels: KernelSet.active.rawValue, threads: Parallel.cores,
                             warning: warning)
    }

    /// Two lines (three with the warning) for the top of a benchmark's table.
    public var lines: [String] {
        let vector = CPUInfo.summary(features)
        var out = ["CPU: \(cpu), \(threads) thread\(threads == 1 ? "" : "s"); vector: \(vector.isEmpty ? "none" : vector)",
                   "OpenBLAS core: \(blasCore)" + (blasCoreAtLoad.map { " (chosen at start-up; OpenBLAS picked \($0))" } ?? "")
                       + "; engine kernels: \(kernels)"]
        if let warning { out.append(warning) }
        return out
    }
}
