"""``python -m cli``, and the file ``spark-submit`` runs (README, "On a cluster")."""

from cli import main

raise SystemExit(main())
