"""tre.web (see docs/architecture.md)."""
