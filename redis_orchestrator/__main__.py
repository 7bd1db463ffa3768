from redis_orchestrator.cli import main

raise SystemExit(main())
