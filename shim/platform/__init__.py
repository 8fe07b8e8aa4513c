"""Runtime detection and the SageMaker container contract (issue 10)."""
