"""Entry point for ``python -m metak``."""

from metak.cli import run

# Guarded, as every entry point should be: importing this module must not run the command line.
if __name__ == "__main__":
    run()
