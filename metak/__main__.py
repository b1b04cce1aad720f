"""Entry point for ``python -m metak``."""

from metak.cli import main

# Guarded: worker processes of a parallel fit (multiprocessing "spawn") import this module as
# __mp_main__ and must not run the command line again.
if __name__ == "__main__":
    raise SystemExit(main())
