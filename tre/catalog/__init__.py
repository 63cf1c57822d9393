"""tre.catalog (see docs/architecture.md)."""
