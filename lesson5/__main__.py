"""`python -m lesson5`: the command line of `lesson5.tools.cli`."""

from lesson5.tools.cli import main

raise SystemExit(main())
