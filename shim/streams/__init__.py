"""The delegate's output: capture (only when needed), masking, records, sinks."""
