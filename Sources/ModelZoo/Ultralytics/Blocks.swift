import Tensor

extension UltralyticsRegistry {
    static func registerBlocks(into registry: UltralyticsRegistry) {}
}
