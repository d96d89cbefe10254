"""``python -m vmfailover``: the command line."""

from vmfailover.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
