"""Writing result files."""
