"""``python -m wsio``: the command line."""

from .cli import main

raise SystemExit(main())
