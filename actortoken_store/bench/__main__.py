"""Entry point of ``python -m actortoken_store.bench``."""

import sys

from actortoken_store.bench.cli import main

sys.exit(main())
