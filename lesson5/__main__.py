from lesson5.cli import main

raise SystemExit(main())
