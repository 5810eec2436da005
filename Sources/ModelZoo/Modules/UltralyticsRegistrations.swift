extension UltralyticsRegistry {
    /// Builders for the attention modules (owned by the Modules/ area): add each here with
    /// `registry.add("NAM") { ctx in BuiltLayer(...) }`, or `handlesRepeats` via `UltralyticsRegistry.register`.
    /// Called once, when the registry is first used, after the built-in blocks.
    static func registerAttentionModules(into registry: UltralyticsRegistry) {}
}
