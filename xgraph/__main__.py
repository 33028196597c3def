"""``python -m xgraph``: the same as the ``xgraph`` command (see :mod:`xgraph.cli`)."""
import sys

from .cli import main

sys.exit(main())
