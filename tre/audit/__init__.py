"""tre.audit (see docs/architecture.md)."""
