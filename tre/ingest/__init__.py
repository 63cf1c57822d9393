"""tre.ingest (see docs/architecture.md)."""
