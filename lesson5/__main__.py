from lesson5.tools.cli import main

raise SystemExit(main())
