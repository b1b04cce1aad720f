"""Entry point for ``python -m metak``."""

from metak.cli import main

raise SystemExit(main())
