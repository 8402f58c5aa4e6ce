"""High-level entry points (the CPU demo)."""
