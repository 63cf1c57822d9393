"""tre.disclosure (see docs/architecture.md)."""
