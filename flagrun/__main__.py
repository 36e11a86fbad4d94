from flagrun.cli import main

raise SystemExit(main())
