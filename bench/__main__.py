"""`python -m bench` from the repository root: see bench/__init__.py."""

from bench.run import main

raise SystemExit(main())
