from repap.cli import main

raise SystemExit(main())
