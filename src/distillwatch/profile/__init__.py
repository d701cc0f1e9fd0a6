"""Per-account behaviour, computed in the engine from per-exchange features."""
