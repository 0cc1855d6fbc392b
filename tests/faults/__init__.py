"""The slow fault runs, run by ``make test-faults`` and CI, not by ``make test``."""
