"""Configuration: the option table, its converters, typed sections, and resolution."""
