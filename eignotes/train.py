"""`python -m eignotes.train`: the training command (eignotes.training.cli), kept at this short name."""
import sys

from .training.cli import main

if __name__ == "__main__":
    sys.exit(main())
