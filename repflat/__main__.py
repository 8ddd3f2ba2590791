from repflat.cli import main

raise SystemExit(main())
