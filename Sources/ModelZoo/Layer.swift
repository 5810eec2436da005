import Tensor

/// What a module sees of the forward pass it runs in: the trace to record into and its own dotted path.
public struct ForwardContext: Sendable {
    public let trace: Trace?
    /// Dotted path of the module, in checkpoint key style (e.g. `model.28.decoder.layers.0`).
    public let path: String
    /// Records every child call with its shapes and FLOPs (the shape pass), when set.
    public let recorder: CallRecorder?

    public init(trace: Trace?, path: String, recorder: CallRecorder? = nil) {
        self.trace = trace
        self.path = path
        self.recorder = recorder
    }

    public func child(_ name: String) -> ForwardContext {
        ForwardContext(trace: trace, path: path.isEmpty ? name : path + "." + name, recorder: recorder)
    }

    public func child(_ index: Int) -> ForwardContext { child(String(index)) }

    /// Records a probe under this module's path (or a child name of it) when tracing with tensors.
    public func probe(_ label: String, _ data: @autoclosure () -> ProbeData, name: String? = nil) {
        guard let trace, trace.keepTensors else { return }
        trace.probe(name.map { path.isEmpty ? $0 : path + "." + $0 } ?? path, label, data())
    }

    /// Throws `CancelledError` when the trace was cancelled (call between layers).
    public func checkCancelled() throws {
        if trace?.isCancelled == true { throw CancelledError() }
    }
}
