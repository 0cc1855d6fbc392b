"""``python -m payments`` serves payments; ``python -m payments migrate`` only migrates."""

from payments.bootstrap import MIGRATIONS, build
from runtime.server import main

if __name__ == "__main__":
    main("payments", build, MIGRATIONS)
