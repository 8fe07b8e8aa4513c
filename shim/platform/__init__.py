"""Runtime detection and the SageMaker container contract."""
