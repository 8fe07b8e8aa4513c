"""Small shared utilities: atomic writes, JSON, platform names, booleans."""
