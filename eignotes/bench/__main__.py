"""`python -m eignotes.bench`: the benchmark command (eignotes.bench.cli)."""
import sys

from .cli import main

sys.exit(main())
