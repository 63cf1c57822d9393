"""tre.governance (see docs/architecture.md)."""
