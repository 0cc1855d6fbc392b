"""Fixtures every test suite can use."""

import os

# Tests fork service processes (subprocess with a preexec_fn) while gRPC threads of earlier
# tests still run. With gRPC's fork support on, the child between fork and exec can restart
# gRPC's poller on file descriptors Popen then closes, and abort (SIGABRT, "epoll_wait error:
# Bad file descriptor"). The child only execs a new interpreter, so it needs none of it.
# Set before anything imports grpc.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
# Services built in-process read NATS_URL; tests that want a broker start their own, and
# nothing a test does may reach a developer's local one on the default port.
os.environ["NATS_URL"] = "nats://127.0.0.1:1"

pytest_plugins = ["tests.support.postgres", "tests.support.nats"]
