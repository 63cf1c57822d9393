"""tre.synth (see docs/architecture.md)."""
