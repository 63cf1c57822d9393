"""Database engine and declarative base (filled by governance)."""
