"""`python -m shim` and the frozen binary's entry point."""

from shim.cli import main

raise SystemExit(main())
