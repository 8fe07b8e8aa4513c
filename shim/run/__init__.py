"""The run pipeline and its steps: delegate, environment, hooks, waiting, results."""
