"""tre.hub (see docs/architecture.md)."""
