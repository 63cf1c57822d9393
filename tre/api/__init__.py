"""tre.api (see docs/architecture.md)."""
