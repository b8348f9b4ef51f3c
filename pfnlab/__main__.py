"""``python -m pfnlab``."""

from pfnlab.cli import main

main()
