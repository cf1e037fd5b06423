"""`python -m lakehouse` is the `lakehouse` command (how the sync worker is started)."""

from lakehouse.cli import main

main()
