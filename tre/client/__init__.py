"""tre.client (see docs/architecture.md)."""
