"""tre.outputs (see docs/architecture.md)."""
