import Tensor

/// ModelZoo: layers, modules, detectors, checkpoints, the catalogue and the trace.
public enum ModelZoo {
    public static let version = "0.1.0"
}
