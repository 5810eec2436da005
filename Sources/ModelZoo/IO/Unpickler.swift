import Foundation
import Tensor

/// Limits that keep a hostile or broken pickle from exhausting memory or the stack.
public struct PickleLimits: Sendable {
    /// Values on the VM stack at once.
    public var maxStack = 2_000_000
    /// Open MARKs at once.
    public var maxMarks = 100_000
    /// Memo entries.
    public var maxMemo = 5_000_000
    /// Nesting depth of containers in the result.
    public var maxDepth = 300
    /// Values in the converted result (shared sub-values count each time they are reached).
    public var maxValues = 5_000_000
    /// Bytes of one string or bytes object.
    public var maxStringBytes = 1 << 30
    public init() {}
}

/// A restricted unpickler (pickle protocols 0 to 5) that never executes anything.
///
/// Classes and functions named by the pickle (GLOBAL / STACK_GLOBAL) are never imported or called. A few
/// data constructors are interpreted (dict, OrderedDict, list, set, tuple, torch.Size, copyreg's
/// reconstructor, torch's tensor rebuild functions, numpy scalars, `_codecs.encode`); every other call or
/// instantiation becomes an inert `PickleObject` keeping its arguments and its BUILD state. Globals that
/// could run code (os.system, builtins.eval, subprocess, ...) are recorded in `dangerousCalls`.
///
/// Reference: the opcode set of CPython's Lib/pickle.py and pickletools.
public final class Unpickler {
    /// Resolves a persistent id (BINPERSID) to a value; torch uses it for storages.
    public typealias PersistentLoader = (PickleValue) throws -> PickleValue

    let bytes: [UInt8]
    let file: String
    let limits: PickleLimits
    let persistentLoad: PersistentLoader?
    /// `module.name` of every dangerous global the pickle tried to call (never called).
    public private(set) var dangerousCalls: [String] = []
    /// `module.name` of every unknown global instantiated or called (kept as inert objects).
    public private(set) var inertGlobals: Set<String> = []

    private var pos = 0
    private var stack: [W] = []
    private var marks: [Int] = []
    private var memo: [Int: W] = [:]
    private var arena: [Box] = []
    private var converted: [ObjectIdentifier: (PickleValue, Int)] = [:]
    /// Entries added to lists, sets, dicts and objects so far: a container extended by itself doubles at every
    /// step (DUP then BUILD or APPENDS), so the total is checked against `limits.maxValues` as it grows.
    private var entries = 0

    private func grow(by n: Int) throws {
        entries += n
        guard entries <= limits.maxValues else { throw fail("pickle grows its lists and dicts beyond \(limits.maxValues) entries") }
    }

    /// - Parameters:
    ///   - data: the pickle bytes.
    ///   - file: a name for errors ("best.pt (data.pkl)").
    public convenience init(data: Data, file: String, limits: PickleLimits = PickleLimits(), persistentLoad: PersistentLoader? = nil) {
        self.init(bytes: [UInt8](data), start: 0, file: file, limits: limits, persistentLoad: persistentLoad)
    }

    /// Reads the pickle that starts at byte `start` of `bytes` (files that hold several pickles in a row).
    public init(bytes: [UInt8], start: Int, file: String, limits: PickleLimits = PickleLimits(), persistentLoad: PersistentLoader? = nil) {
        self.bytes = bytes
        self.pos = start
        self.file = file
        self.limits = limits
        self.persistentLoad = persistentLoad
    }

    /// The byte after the STOP opcode once `load()` has returned.
    public var endOffset: Int { pos }

    deinit { tearDown() }

    /// Reads the pickle up to STOP and returns its value.
    public func load() throws -> PickleValue {
        defer { tearDown() }
        let top = try run()
        var budget = limits.maxValues
        return try convert(top, depth: 0, budget: &budget)
    }

    // MARK: - Working values

    /// A mutable container during unpickling (lists, dicts, sets and inert objects can be filled after
    /// they are memoised, so they must be references).
    final class Box {
        enum Kind { case list, dict, set, object, tensor }
        var kind: Kind
        var items: [W] = []
        var pairs: [(W, W)] = []
        var className = ""
        var args: [W] = []
        var kwargs: [(W, W)] = []
        var state: W?
        var depth = 1
        init(_ kind: Kind) { self.kind = kind }
        func clear() {
            items.removeAll()
            pairs.removeAll()
            args.removeAll()
            kwargs.removeAll()
            state = nil
        }
    }

    indirect enum W {
        case none, bool(Bool), int(Int), bigInt(Double), float(Double), string(String), bytes(Data)
        case tuple([W], depth: Int)
        case global(String)
        case box(Box)
        case storage(TorchStorageRef)
        case tensor(TorchTensorRef)

        var depth: Int {
            switch self {
            case .tuple(_, let d): return d
            case .box(let b): return b.depth
            default: return 0
            }
        }
        var string: String? { if case .string(let s) = self { return s }; return nil }
    }

    private func tearDown() {
        // Break every reference between containers first, so releasing them never recurses deeply.
        for b in arena { b.clear() }
        arena.removeAll()
        converted.removeAll()
        stack.removeAll()
        memo.removeAll()
    }

    private func fail(_ problem: String) -> FileFormatError {
        FileFormatError(file: file, problem: problem)
    }

    private func newBox(_ kind: Box.Kind) -> Box {
        let b = Box(kind)
        arena.append(b)
        return b
    }

    private func makeTuple(_ items: [W]) throws -> W {
        let d = (items.map(\.depth).max() ?? 0) + 1
        guard d <= limits.maxDepth else { throw fail("pickle nests values deeper than \(limits.maxDepth) levels") }
        return .tuple(items, depth: d)
    }

    private func adopt(_ child: W, into box: Box) throws {
        let d = child.depth + 1
        if d > box.depth {
            guard d <= limits.maxDepth else { throw fail("pickle nests values deeper than \(limits.maxDepth) levels") }
            box.depth = d
        }
    }

    // MARK: - Reading bytes

    private func need(_ n: Int) throws {
        guard n >= 0, pos + n <= bytes.count else { throw fail("pickle data ends early (truncated at byte \(bytes.count))") }
    }
    private func byte() throws -> UInt8 {
        try need(1)
        defer { pos += 1 }
        return bytes[pos]
    }
    private func uint(_ n: Int) throws -> UInt64 {
        try need(n)
        var v: UInt64 = 0
        for i in 0 ..< n { v |= UInt64(bytes[pos + i]) << (8 * UInt64(i)) }
        pos += n
        return v
    }
    private func length(_ n: Int) throws -> Int {
        let v = try uint(n)
        guard v <= UInt64(limits.maxStringBytes) else { throw fail("pickle claims a \(v)-byte object, more than the limit") }
        return Int(v)
    }
    private func take(_ n: Int) throws -> ArraySlice<UInt8> {
        try need(n)
        defer { pos += n }
        return bytes[pos ..< pos + n]
    }
    private func line() throws -> String {
        guard let end = bytes[pos...].firstIndex(of: 0x0A) else { throw fail("pickle data ends inside a text line") }
        let s = String(decoding: bytes[pos ..< end], as: UTF8.self)
        pos = end + 1
        return s.hasSuffix("\r") ? String(s.dropLast()) : s
    }

    // MARK: - Stack

    private func push(_ v: W) throws {
        guard stack.count < limits.maxStack else { throw fail("pickle stack grows beyond \(limits.maxStack) values") }
        stack.append(v)
    }
    private func pop() throws -> W {
        guard let v = stack.popLast(), stack.count >= (marks.last ?? 0) else { throw fail("pickle stack underflow (malformed pickle)") }
        return v
    }
    private func top() throws -> W {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw fail("pickle stack underflow (malformed pickle)") }
        return v
    }
    private func popMark() throws -> [W] {
        guard let m = marks.popLast() else { throw fail("pickle uses a MARK that was never set (malformed pickle)") }
        guard m <= stack.count else { throw fail("pickle stack underflow (malformed pickle)") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }
    private func memoPut(_ index: Int, _ v: W) throws {
        guard index >= 0 else { throw fail("negative memo index") }
        if memo[index] == nil, memo.count >= limits.maxMemo { throw fail("pickle memo grows beyond \(limits.maxMemo) entries") }
        memo[index] = v
    }
    private func memoGet(_ index: Int) throws -> W {
        guard let v = memo[index] else { throw fail("pickle refers to memo entry \(index), which was never stored (malformed pickle)") }
        return v
    }

    // MARK: - The VM

    private func run() throws -> W {
        while true {
            let op = try byte()
            switch op {
            case 0x80: // PROTO
                let p = try byte()
                guard p <= 5 else { throw fail("pickle protocol \(p) is not supported (0 to 5 are)") }
            case 0x95: // FRAME
                _ = try uint(8)
            case 0x2E: // STOP
                return try pop()
            case 0x28: // MARK
                guard marks.count < limits.maxMarks else { throw fail("pickle opens more than \(limits.maxMarks) nested MARKs") }
                marks.append(stack.count)
            case 0x30: _ = try pop() // POP
            case 0x31: _ = try popMark() // POP_MARK
            case 0x32: try push(try top()) // DUP
            case 0x4E: try push(.none)
            case 0x88: try push(.bool(true))
            case 0x89: try push(.bool(false))
            case 0x4A: try push(.int(Int(Int32(truncatingIfNeeded: UInt32(try uint(4))))))
            case 0x4B: try push(.int(Int(try byte())))
            case 0x4D: try push(.int(Int(try uint(2))))
            case 0x8A: try push(try long(try length(1)))
            case 0x8B: try push(try long(try length(4)))
            case 0x49: // INT (text)
                let s = try line()
                if s == "00" { try push(.bool(false)) } else if s == "01" { try push(.bool(true)) } else if let i = Int(s) { try push(.int(i)) } else if let d = Double(s) { try push(.bigInt(d)) } else { throw fail("bad INT literal '\(s.prefix(40))'") }
            case 0x4C: // LONG (text)
                var s = try line()
                if s.hasSuffix("L") { s.removeLast() }
                if let i = Int(s) { try push(.int(i)) } else if let d = Double(s) { try push(.bigInt(d)) } else { throw fail("bad LONG literal '\(s.prefix(40))'") }
            case 0x46: // FLOAT (text)
                let s = try line()
                guard let d = Double(s) else { throw fail("bad FLOAT literal '\(s.prefix(40))'") }
                try push(.float(d))
            case 0x47: // BINFLOAT, big-endian
                try need(8)
                var v: UInt64 = 0
                for i in 0 ..< 8 { v = v << 8 | UInt64(bytes[pos + i]) }
                pos += 8
                try push(.float(Double(bitPattern: v)))
            case 0x58: try push(.string(try utf8(try length(4)))) // BINUNICODE
            case 0x8C: try push(.string(try utf8(try length(1)))) // SHORT_BINUNICODE
            case 0x8D: try push(.string(try utf8(try length(8)))) // BINUNICODE8
            case 0x56: try push(.string(try line())) // UNICODE (raw-unicode-escape; ASCII in practice)
            case 0x53: // STRING (quoted text)
                var s = try line()
                if s.count >= 2, let f = s.first, f == "'" || f == "\"", s.last == f { s = String(s.dropFirst().dropLast()) }
                try push(.string(s))
            case 0x54: try push(.string(String(decoding: try take(try length(4)), as: UTF8.self))) // BINSTRING
            case 0x55: try push(.string(String(decoding: try take(try length(1)), as: UTF8.self))) // SHORT_BINSTRING
            case 0x42: try push(.bytes(Data(try take(try length(4))))) // BINBYTES
            case 0x43: try push(.bytes(Data(try take(try length(1))))) // SHORT_BINBYTES
            case 0x8E, 0x96: try push(.bytes(Data(try take(try length(8))))) // BINBYTES8, BYTEARRAY8
            case 0x97: throw fail("pickle uses out-of-band buffers (NEXT_BUFFER), which a file cannot carry")
            case 0x98: break // READONLY_BUFFER
            case 0x29: try push(try makeTuple([])) // EMPTY_TUPLE
            case 0x85: let a = try pop(); try push(try makeTuple([a]))
            case 0x86: let b = try pop(), a = try pop(); try push(try makeTuple([a, b]))
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); try push(try makeTuple([a, b, c]))
            case 0x74: try push(try makeTuple(try popMark())) // TUPLE
            case 0x5D: try push(.box(newBox(.list))) // EMPTY_LIST
            case 0x6C: // LIST
                let items = try popMark()
                let b = newBox(.list)
                for i in items { try adopt(i, into: b) }
                b.items = items
                try push(.box(b))
            case 0x7D: try push(.box(newBox(.dict))) // EMPTY_DICT
            case 0x64: // DICT
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("DICT with an odd number of items") }
                let b = newBox(.dict)
                for i in stride(from: 0, to: items.count, by: 2) {
                    try adopt(items[i + 1], into: b)
                    b.pairs.append((items[i], items[i + 1]))
                }
                try push(.box(b))
            case 0x8F: try push(.box(newBox(.set))) // EMPTY_SET
            case 0x91: // FROZENSET
                let items = try popMark()
                let b = newBox(.set)
                for i in items { try adopt(i, into: b) }
                b.items = items
                try push(.box(b))
            case 0x61: // APPEND
                let v = try pop()
                try append([v], to: try top())
            case 0x65: // APPENDS
                let items = try popMark()
                try append(items, to: try top())
            case 0x90: // ADDITEMS
                let items = try popMark()
                try append(items, to: try top())
            case 0x73: // SETITEM
                let v = try pop(), k = try pop()
                try setItems([(k, v)], on: try top())
            case 0x75: // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items") }
                try setItems(stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }, on: try top())
            case 0x68: try push(try memoGet(Int(try byte()))) // BINGET
            case 0x6A: try push(try memoGet(Int(try uint(4)))) // LONG_BINGET
            case 0x67: // GET
                let s = try line()
                guard let i = Int(s) else { throw fail("bad GET index '\(s.prefix(20))'") }
                try push(try memoGet(i))
            case 0x71: try memoPut(Int(try byte()), try top()) // BINPUT
            case 0x72: try memoPut(Int(try uint(4)), try top()) // LONG_BINPUT
            case 0x70: // PUT
                let s = try line()
                guard let i = Int(s) else { throw fail("bad PUT index '\(s.prefix(20))'") }
                try memoPut(i, try top())
            case 0x94: try memoPut(memo.count, try top()) // MEMOIZE
            case 0x63: // GLOBAL
                let module = try line(), name = try line()
                try push(.global(PythonNames.normalise(module: module, name: name)))
            case 0x93: // STACK_GLOBAL
                let n = try pop(), m = try pop()
                guard let module = m.string, let name = n.string else { throw fail("STACK_GLOBAL needs two strings") }
                try push(.global(PythonNames.normalise(module: module, name: name)))
            case 0x82, 0x83, 0x84: // EXT1/2/4
                throw fail("pickle uses the copyreg extension registry (EXT opcodes), which is not supported")
            case 0x52: // REDUCE
                let args = try pop(), callable = try pop()
                guard case .tuple(let items, _) = args else { throw fail("REDUCE arguments are not a tuple") }
                try push(try call(callable, args: items, kwargs: []))
            case 0x81: // NEWOBJ
                let args = try pop(), cls = try pop()
                guard case .tuple(let items, _) = args else { throw fail("NEWOBJ arguments are not a tuple") }
                try push(try instantiate(cls, args: items, kwargs: []))
            case 0x92: // NEWOBJ_EX
                let kw = try pop(), args = try pop(), cls = try pop()
                guard case .tuple(let items, _) = args else { throw fail("NEWOBJ_EX arguments are not a tuple") }
                var kwargs: [(W, W)] = []
                if case .box(let b) = kw { kwargs = b.pairs }
                try push(try instantiate(cls, args: items, kwargs: kwargs))
            case 0x69: // INST
                let module = try line(), name = try line()
                let args = try popMark()
                try push(try instantiate(.global(PythonNames.normalise(module: module, name: name)), args: args, kwargs: []))
            case 0x6F: // OBJ
                var items = try popMark()
                guard !items.isEmpty else { throw fail("OBJ without a class") }
                let cls = items.removeFirst()
                try push(try instantiate(cls, args: items, kwargs: []))
            case 0x62: // BUILD
                let state = try pop()
                try build(try top(), state: state)
            case 0x51: // BINPERSID
                let pid = try pop()
                try push(try persistent(pid))
            case 0x50: // PERSID
                try push(try persistent(.string(try line())))
            default:
                throw fail(String(format: "unknown pickle opcode 0x%02x at byte %d (not a pickle, or a corrupt one)", op, pos - 1))
            }
        }
    }

    private func utf8(_ n: Int) throws -> String {
        let slice = try take(n)
        return String(decoding: slice, as: UTF8.self)
    }

    private func long(_ n: Int) throws -> W {
        if n == 0 { return .int(0) }
        let slice = try take(n)
        if n <= 8 {
            var v: UInt64 = 0
            for (i, b) in slice.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            if n < 8, slice.last! & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) } // sign-extend
            return .int(Int(Int64(bitPattern: v)))
        }
        // Larger than 64 bits: keep an approximation.
        var d = 0.0
        for b in slice.reversed() { d = d * 256 + Double(b) }
        if slice.last! & 0x80 != 0 { d -= pow(2, Double(8 * n)) }
        return .bigInt(d)
    }

    private func append(_ items: [W], to target: W) throws {
        guard case .box(let b) = target else { throw fail("APPEND to a value that is not a list") }
        try grow(by: items.count)
        for i in items { try adopt(i, into: b) }
        switch b.kind {
        case .list, .set, .object: b.items += items
        default: throw fail("APPEND to a value that is not a list")
        }
    }

    private func setItems(_ pairs: [(W, W)], on target: W) throws {
        guard case .box(let b) = target, b.kind == .dict || b.kind == .object else { throw fail("SETITEM on a value that is not a dict") }
        try grow(by: pairs.count)
        for (_, v) in pairs { try adopt(v, into: b) }
        b.pairs += pairs
    }

    private func build(_ target: W, state: W) throws {
        guard case .box(let b) = target else {
            // BUILD on plain data (e.g. a rebuilt tensor given python attributes): nothing to keep.
            return
        }
        try adopt(state, into: b)
        switch b.kind {
        case .object, .tensor:
            b.state = state
        case .dict:
            // dict subclasses pickled by __reduce__ may pass their items as state
            if case .box(let s) = state, s.kind == .dict {
                try grow(by: s.pairs.count)
                b.pairs += s.pairs
            }
        default:
            b.state = state
        }
    }

    private func persistent(_ pid: W) throws -> W {
        guard let persistentLoad else { throw fail("pickle refers to external data (a persistent id) but it is not part of an archive that provides it") }
        var budget = 1000
        let value = try convert(pid, depth: 0, budget: &budget)
        switch try persistentLoad(value) {
        case .storage(let s): return .storage(s)
        case .tensor(let t): return .tensor(t)
        case .none: return .none
        case .string(let s): return .string(s)
        default: throw fail("persistent id resolved to an unsupported value")
        }
    }

    // MARK: - Calls (interpreted, never executed)

    private func instantiate(_ cls: W, args: [W], kwargs: [(W, W)]) throws -> W {
        guard case .global(let name) = cls else {
            if case .box(let b) = cls, b.kind == .object {
                // A class that is itself an inert value (e.g. a type pickled by reduction).
                return try inert("\(b.className)()", args: args, kwargs: kwargs)
            }
            throw fail("NEWOBJ on a value that is not a class")
        }
        switch name {
        case "builtins.dict", "collections.OrderedDict", "collections.defaultdict":
            return .box(newBox(.dict))
        case "builtins.list":
            return .box(newBox(.list))
        case "builtins.set", "builtins.frozenset":
            return .box(newBox(.set))
        case "builtins.object":
            return try inert(name, args: [], kwargs: [])
        default:
            return try call(cls, args: args, kwargs: kwargs)
        }
    }

    private func inert(_ name: String, args: [W], kwargs: [(W, W)]) throws -> W {
        let b = newBox(.object)
        b.className = name
        for a in args { try adopt(a, into: b) }
        for (_, v) in kwargs { try adopt(v, into: b) }
        b.args = args
        b.kwargs = kwargs
        inertGlobals.insert(name)
        return .box(b)
    }

    private func call(_ callable: W, args: [W], kwargs: [(W, W)]) throws -> W {
        guard case .global(let name) = callable else {
            return try inert("<call of \(describe(callable))>", args: args, kwargs: kwargs)
        }
        if PythonNames.isDangerous(name) {
            dangerousCalls.append(name)
            return try inert(name, args: args, kwargs: kwargs)
        }
        switch name {
        case "collections.OrderedDict", "builtins.dict":
            let b = newBox(.dict)
            if let first = args.first, case .box(let src) = first {
                if src.kind == .dict { b.pairs = src.pairs }
                if src.kind == .list {
                    for item in src.items { if case .tuple(let kv, _) = item, kv.count == 2 { b.pairs.append((kv[0], kv[1])) } }
                }
                b.depth = src.depth
            }
            return .box(b)
        case "collections.defaultdict":
            return .box(newBox(.dict))
        case "builtins.list", "builtins.set", "builtins.frozenset":
            let b = newBox(name == "builtins.list" ? .list : .set)
            if let first = args.first {
                switch first {
                case .box(let src): b.items = src.items; b.depth = src.depth + 1
                case .tuple(let items, let d): b.items = items; b.depth = d
                default: break
                }
            }
            return .box(b)
        case "builtins.tuple", "torch.Size":
            if let first = args.first {
                switch first {
                case .tuple: return first
                case .box(let src) where src.kind == .list: return try makeTuple(src.items)
                default: break
                }
            }
            return try makeTuple([])
        case "builtins.bytearray", "builtins.bytes":
            if let first = args.first, case .bytes = first { return first }
            return .bytes(Data())
        case "_codecs.encode":
            // Python 2-compatible bytes: encode(text, 'latin1').
            if let s = args.first?.string {
                return .bytes(Data(s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }))
            }
            return try inert(name, args: args, kwargs: kwargs)
        case "copyreg._reconstructor":
            // _reconstructor(cls, base, state): an instance of cls; nothing is run.
            guard args.count >= 1, case .global(let cls) = args[0] else { return try inert(name, args: args, kwargs: kwargs) }
            return try inert(cls, args: [], kwargs: [])
        case "copyreg.__newobj__", "copyreg.__newobj_ex__":
            guard let first = args.first else { return try inert(name, args: args, kwargs: kwargs) }
            return try instantiate(first, args: Array(args.dropFirst()), kwargs: [])
        case "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2":
            return .tensor(try rebuildTensor(args, dtypeArg: nil, function: name))
        case "torch._utils._rebuild_tensor_v3":
            guard args.count >= 7 else { throw fail("\(name) needs 7 arguments, got \(args.count)") }
            return .tensor(try rebuildTensor(args, dtypeArg: args[6], function: name))
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            guard let first = args.first, case .tensor(var t) = first else {
                throw fail("\(name) is not given a tensor")
            }
            t.isParameter = true
            if args.count > 1, case .bool(let rg) = args[1] { t.requiresGrad = rg }
            return .tensor(t)
        case "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar":
            if args.count == 2, case .bytes(let raw) = args[1], let v = numpyScalar(dtype: args[0], raw: raw) { return v }
            return try inert(name, args: args, kwargs: kwargs)
        default:
            return try inert(name, args: args, kwargs: kwargs)
        }
    }

    private func numpyScalar(dtype: W, raw: Data) -> W? {
        guard case .box(let d) = dtype, d.kind == .object, d.className.hasSuffix(".dtype"), let code = d.args.first?.string else { return nil }
        let b = [UInt8](raw)
        func le(_ n: Int) -> UInt64 { (0 ..< n).reduce(UInt64(0)) { $0 | UInt64(b[$1]) << (8 * UInt64($1)) } }
        switch (code, b.count) {
        case ("f8", 8): return .float(Double(bitPattern: le(8)))
        case ("f4", 4): return .float(Double(Float(bitPattern: UInt32(le(4)))))
        case ("i8", 8): return .int(Int(Int64(bitPattern: le(8))))
        case ("i4", 4): return .int(Int(Int32(bitPattern: UInt32(le(4)))))
        case ("b1", 1): return .bool(b[0] != 0)
        default: return nil
        }
    }

    private func ints(_ w: W, what: String, function: String) throws -> [Int] {
        let items: [W]
        switch w {
        case .tuple(let t, _): items = t
        case .box(let b) where b.kind == .list: items = b.items
        case .int(let i): return [i]
        default: throw fail("\(function): \(what) is not a tuple of integers")
        }
        return try items.map {
            guard case .int(let i) = $0 else { throw fail("\(function): \(what) is not a tuple of integers") }
            return i
        }
    }

    private func rebuildTensor(_ args: [W], dtypeArg: W?, function: String) throws -> TorchTensorRef {
        guard args.count >= 4 else { throw fail("\(function) needs at least 4 arguments, got \(args.count)") }
        guard case .storage(let storage) = args[0] else { throw fail("\(function) is not given a storage") }
        guard case .int(let offset) = args[1], offset >= 0 else { throw fail("\(function): bad storage offset") }
        let shape = try ints(args[2], what: "size", function: function)
        let stride = try ints(args[3], what: "stride", function: function)
        guard shape.count == stride.count else { throw fail("\(function): size \(shape) and stride \(stride) have different ranks") }
        guard shape.allSatisfy({ $0 >= 0 }), stride.allSatisfy({ $0 >= 0 }) else {
            throw fail("\(function): negative size or stride (size \(shape), stride \(stride))")
        }
        guard let count = Budget.product(shape), count < (1 << 40) else {
            throw fail("\(function): tensor of size \(shape) is absurdly large (more than 2^40 elements)")
        }
        // The last element the view reaches, offset + sum((size-1) * stride), in checked arithmetic: a size,
        // stride or offset near 2^63 would otherwise overflow where the view is checked against its storage.
        if count > 0 {
            var end = offset
            for (s, st) in zip(shape, stride) {
                let (reach, o1) = (s - 1).multipliedReportingOverflow(by: st)
                let (e, o2) = end.addingReportingOverflow(reach)
                guard !o1, !o2, e < Int.max else {
                    throw fail("\(function): size \(shape), stride \(stride) and offset \(offset) overflow 64-bit arithmetic")
                }
                end = e
            }
        }
        var dtype = storage.dtype
        var elementOffset = offset
        var available = storage.numel
        if let dtypeArg {
            guard case .global(let g) = dtypeArg, g.hasPrefix("torch."), let d = TorchDType.byTorchName[String(g.dropFirst(6))] else {
                throw fail("\(function): unknown dtype \(describe(dtypeArg))")
            }
            dtype = d
            if storage.dtype.name == "U8", storage.storageClass == "UntypedStorage", let size = d.byteSize {
                // An untyped storage counts bytes; the offset counts elements of the tensor's dtype.
                available = storage.numel / size
                elementOffset = offset
            }
        }
        var requiresGrad = false
        if args.count > 4, case .bool(let rg) = args[4] { requiresGrad = rg }
        let t = TorchTensorRef(storage: storage, dtype: dtype, offset: elementOffset, shape: shape, stride: stride,
                               isParameter: false, requiresGrad: requiresGrad)
        let needed = t.requiredElements
        if needed > available {
            throw fail("tensor of size \(shape), stride \(stride) at offset \(offset) needs \(needed) elements of storage '\(storage.key)', which holds only \(available)")
        }
        return t
    }

    private func describe(_ w: W) -> String {
        switch w {
        case .global(let g): return g
        case .box(let b): return b.kind == .object ? b.className : "\(b.kind)"
        case .string(let s): return "'\(s.prefix(40))'"
        default: return "\(w)".prefix(60).description
        }
    }

    // MARK: - Conversion to the immutable result

    private func convert(_ w: W, depth: Int, budget: inout Int) throws -> PickleValue {
        guard depth <= limits.maxDepth else { throw fail("pickle nests values deeper than \(limits.maxDepth) levels (or refers to itself)") }
        budget -= 1
        guard budget >= 0 else { throw fail("pickle expands to more than \(limits.maxValues) values") }
        switch w {
        case .none: return .none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .bigInt(let d): return .bigInt(d)
        case .float(let d): return .float(d)
        case .string(let s): return .string(s)
        case .bytes(let d): return .bytes(d)
        case .global(let g): return .global(g)
        case .storage(let s): return .storage(s)
        case .tensor(let t): return .tensor(t)
        case .tuple(let items, _): return .tuple(try items.map { try convert($0, depth: depth + 1, budget: &budget) })
        case .box(let b):
            // A container reached again is converted once; its size still counts against the budget, so
            // sharing cannot hide an exponential expansion.
            let id = ObjectIdentifier(b)
            if let (value, size) = converted[id] {
                budget -= size
                guard budget >= 0 else { throw fail("pickle expands to more than \(limits.maxValues) values") }
                return value
            }
            let before = budget
            let value = try convertBox(b, depth: depth, budget: &budget)
            converted[id] = (value, before - budget)
            return value
        }
    }

    private func convertBox(_ b: Box, depth: Int, budget: inout Int) throws -> PickleValue {
            switch b.kind {
            case .list: return .list(try b.items.map { try convert($0, depth: depth + 1, budget: &budget) })
            case .set: return .set(try b.items.map { try convert($0, depth: depth + 1, budget: &budget) })
            case .dict:
                return .dict(try b.pairs.map { (try convert($0.0, depth: depth + 1, budget: &budget), try convert($0.1, depth: depth + 1, budget: &budget)) })
            case .object, .tensor:
                let obj = PickleObject(
                    className: b.className,
                    args: try b.args.map { try convert($0, depth: depth + 1, budget: &budget) },
                    kwargs: try b.kwargs.map { (try convert($0.0, depth: depth + 1, budget: &budget), try convert($0.1, depth: depth + 1, budget: &budget)) },
                    state: try b.state.map { try convert($0, depth: depth + 1, budget: &budget) },
                    listItems: try b.items.map { try convert($0, depth: depth + 1, budget: &budget) },
                    dictItems: try b.pairs.map { (try convert($0.0, depth: depth + 1, budget: &budget), try convert($0.1, depth: depth + 1, budget: &budget)) })
                return .object(obj)
            }
    }
}

/// Python global names: normalising Python 2 spellings and deciding which are dangerous.
enum PythonNames {
    static func normalise(module: String, name: String) -> String {
        var m = module
        switch module {
        case "__builtin__", "exceptions": m = "builtins"
        case "copy_reg": m = "copyreg"
        default: break
        }
        return "\(m).\(name)"
    }

    static let dangerousModules: [String] = [
        "os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "pty", "importlib", "runpy", "pickle", "_pickle",
        "marshal", "ctypes", "webbrowser", "code", "codeop", "commands", "pip", "requests", "urllib", "http", "multiprocessing",
        "asyncio", "signal", "tempfile", "torch.hub", "torch.load", "torch.save", "torch.jit", "torch.ops",
    ]
    static let dangerousBuiltins: Set<String> = [
        "eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals", "locals", "vars",
        "input", "breakpoint", "exit", "quit", "apply", "execfile", "file", "reload",
    ]

    /// Whether calling this global could run code, touch files or the network.
    static func isDangerous(_ qualified: String) -> Bool {
        if qualified.hasPrefix("builtins.") {
            return dangerousBuiltins.contains(String(qualified.dropFirst(9)))
        }
        for m in dangerousModules where qualified == m || qualified.hasPrefix(m + ".") {
            return true
        }
        return false
    }
}
