"""The SDK clients' HTTP client, with the TLS context built once per process.

Building an SDK client (openai.OpenAI, anthropic.Anthropic) builds an httpx client, and that
builds a TLS context by reading the system's CA bundle: about 16 ms of CPU each time, measured
here, which is most of what starting a run's clients costs (benchmarks/concurrency.py). The
context is the SDKs' own default, built by the same httpx function with the same environment
(SSL_CERT_FILE, SSL_CERT_DIR), kept and shared: an SSLContext is safe to share across clients
and threads. Everything else is the SDK's default HTTP client (its timeouts, connection limits,
redirects, proxies from the environment).
"""

from __future__ import annotations

import functools
import os
import ssl


@functools.lru_cache(maxsize=4)
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    try:  # the SDKs' HTTP library: httpx2 in recent releases, httpx before
        from httpx2 import create_ssl_context
    except ImportError:  # pragma: no cover - older SDKs
        from httpx import create_ssl_context  # type: ignore[no-redef]
    return create_ssl_context()


def tls_context() -> ssl.SSLContext:
    """The default TLS context, built once per CA setting of the environment."""
    return _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=None)
def _closing_class(base: type) -> type:
    class Closing(base):  # type: ignore[misc, valid-type]
        """Closes its connections when collected, as the client the SDK builds for itself does."""

        def __del__(self) -> None:
            if not self.is_closed:
                try:
                    self.close()
                except Exception:
                    pass

    return Closing


def http_client(sdk, *, timeout_s: float):
    """`sdk.DefaultHttpxClient` (the SDK's own defaults) on the shared TLS context, closed when
    collected; `sdk` is the `openai` or `anthropic` module."""
    return _closing_class(sdk.DefaultHttpxClient)(verify=tls_context(), timeout=timeout_s)
