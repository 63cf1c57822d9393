"""tre.query (see docs/architecture.md)."""
