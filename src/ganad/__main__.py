"""``python -m ganad`` runs the command line (``torchrun --nproc-per-node 2 -m ganad fit ...`` needs it)."""

from ganad.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
