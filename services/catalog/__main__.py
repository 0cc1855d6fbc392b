"""``python -m catalog`` serves the catalog; ``python -m catalog migrate`` only migrates."""

from catalog.bootstrap import MIGRATIONS, build
from runtime.server import main

if __name__ == "__main__":
    main("catalog", build, MIGRATIONS)
