"""``python -m orders`` serves orders; ``python -m orders migrate`` only migrates."""

from orders.bootstrap import MIGRATIONS, build
from runtime.server import main

if __name__ == "__main__":
    main("orders", build, MIGRATIONS)
