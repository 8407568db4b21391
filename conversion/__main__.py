"""``python -m predictlib.build PATH ...``: the same as ``predictlib build PATH ...``."""

import sys

from .cli import main

sys.exit(main(prog="python -m predictlib.build"))
