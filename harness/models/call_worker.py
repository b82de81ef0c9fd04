"""A model-call worker process (started by harness/models/call_pool.py, never by hand).

It reads pickled calls on stdin: (job, ModelSpec, timeout_s, attempts, ChatRequest). It makes
each one in a thread through the same client the driver would build, retries included. It
writes back (job, True, Completion) or (job, False, (kind, message, attempts)). It stores
nothing and grades nothing. Those stay with the driver. Its stdin closing (the driver closed
the pool, or died) ends it at once.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

from harness.models.base import ModelCallError
from harness.models.registry import make_client


def main() -> None:
    calls_in = os.fdopen(os.dup(0), "rb")
    replies_out = os.fdopen(os.dup(1), "wb")
    # Whatever a library prints goes to stderr, never into the replies.
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    # Ctrl-C is the driver's to handle (it marks the run interrupted, then closes the pool).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Retry warnings reach the terminal as the driver's own do (harness/cli/main.py).
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    clients: dict = {}
    clients_lock, out_lock = threading.Lock(), threading.Lock()

    def call(job: int, spec, timeout_s: float, attempts: int, request) -> None:
        try:
            with clients_lock:
                key = (spec, timeout_s, attempts)
                client = clients.get(key) or clients.setdefault(
                    key, make_client(spec, timeout_s=timeout_s, attempts=attempts))
            reply: tuple = (job, True, client.complete(request))
        except ModelCallError as err:
            reply = (job, False, (err.kind, err.args[0], err.attempts))
        except Exception as err:  # a kernelgrade bug: the driver stores it as the trial's error
            reply = (job, False, ("other", f"internal (model-call worker): {type(err).__name__}: {err}", None))
        data = pickle.dumps(reply, pickle.HIGHEST_PROTOCOL)
        with out_lock:
            replies_out.write(data)
            replies_out.flush()

    # Threads are made only as calls wait for one; the driver bounds the calls in flight.
    pool = ThreadPoolExecutor(max_workers=512, thread_name_prefix="call")
    while True:
        try:
            message = pickle.load(calls_in)
        except (EOFError, OSError):
            break
        pool.submit(call, *message)
    # Nobody is left to read a reply: calls still in flight are redone by --resume.
    os._exit(0)


if __name__ == "__main__":
    main()
