"""Plug points (reserved)."""
