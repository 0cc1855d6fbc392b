"""``python -m inventory`` serves inventory; ``python -m inventory migrate`` only migrates."""

from inventory.bootstrap import MIGRATIONS, build
from runtime.server import main

if __name__ == "__main__":
    main("inventory", build, MIGRATIONS)
