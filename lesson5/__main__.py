"""`python -m lesson5`: the command line of `lesson5.tools.cli`.

Notebooks 00-06.
"""

from lesson5.tools.cli import main

raise SystemExit(main())
