"""tre.wire (see docs/architecture.md)."""
