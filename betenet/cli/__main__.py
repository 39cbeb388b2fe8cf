"""``python -m betenet.cli``: the ``betenet`` command."""

from betenet.cli import main

raise SystemExit(main())
