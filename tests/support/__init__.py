"""Helpers shared by the test suite and the benchmarks.

``procs``: real peers as processes; ``certs``: self-signed TLS certificates;
``sio``: waiting for conditions, recording and raw Socket.IO clients; ``cluster``:
clients of the Redis cluster tests.
"""
