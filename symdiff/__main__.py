"""``python -m symdiff``: the same as the ``symdiff`` command."""

from .cli import main

if __name__ == "__main__":
    main()
