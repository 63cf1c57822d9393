"""tre.privacy (see docs/architecture.md)."""
