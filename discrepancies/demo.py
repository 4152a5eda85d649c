"""Demo (being written)."""
