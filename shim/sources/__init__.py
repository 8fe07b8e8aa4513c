"""Secret and config sources, the ref+ parser and the targets values are written to (issue 10)."""
