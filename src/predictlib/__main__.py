"""``python -m predictlib``: the ``predictlib`` command."""

from ._cli import main

raise SystemExit(main())
