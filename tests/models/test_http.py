"""The SDK clients share one TLS context per process (harness/models/http.py)."""

from __future__ import annotations

import ssl
from pathlib import Path

import anthropic
import openai
import pytest

from harness.models.anthropic_client import AnthropicClient
from harness.models.http import tls_context
from harness.models.openai_compat import OpenAICompatClient


def _verify_context(sdk_client) -> ssl.SSLContext:
    pool = sdk_client._client._transport._pool  # the httpx transport's connection pool
    return pool._ssl_context


def test_clients_share_one_tls_context_and_keep_their_timeout() -> None:
    a = OpenAICompatClient("m", base_url="http://127.0.0.1:1/v1", timeout_s=12.0)
    b = OpenAICompatClient("m", base_url="http://127.0.0.1:1/v1")
    c = AnthropicClient("m", api_key="k", timeout_s=7.0)
    assert _verify_context(a._client) is _verify_context(b._client) is _verify_context(c._client) is tls_context()
    assert isinstance(a._client, openai.OpenAI) and isinstance(c._client, anthropic.Anthropic)
    assert a._client.timeout == 12.0 and c._client.timeout == 7.0
    assert tls_context().verify_mode == ssl.CERT_REQUIRED and tls_context().check_hostname


def test_a_different_ca_setting_gets_its_own_context(monkeypatch, tmp_path) -> None:
    default = tls_context()
    bundle = ssl.get_default_verify_paths().openssl_cafile
    if not Path(bundle).is_file():
        pytest.skip(f"no CA bundle at {bundle}")
    monkeypatch.setenv("SSL_CERT_FILE", bundle)
    assert tls_context() is not default and tls_context() is tls_context()


def test_a_dropped_client_closes_its_connections() -> None:
    client = OpenAICompatClient("m", base_url="http://127.0.0.1:1/v1")._client._client
    assert isinstance(client, openai.DefaultHttpxClient) and not client.is_closed
    client.__del__()
    assert client.is_closed
