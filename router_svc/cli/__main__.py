from router_svc.cli import main

raise SystemExit(main())
