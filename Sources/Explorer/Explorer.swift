import ModelZoo

/// Explorer: the terminal user interface (state, update, view, rendering, terminal driver).
public enum Explorer {}
