"""Process tier: real processes; the shim under test is the source or $SHIM_BIN."""
