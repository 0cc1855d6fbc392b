"""`python -m notifications` serves; `python -m notifications migrate` only migrates."""

from notifications.bootstrap import MIGRATIONS, build
from runtime.server import main

if __name__ == "__main__":
    main("notifications", build, MIGRATIONS)
