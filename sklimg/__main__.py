"""``python -m sklimg``: the ``sklimg`` command."""

from sklimg.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
