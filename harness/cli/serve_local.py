"""`kernelgrade serve-local`: run the embedded model server in the foreground for reuse across runs."""

from __future__ import annotations

import ipaddress
import time

import typer
from rich.console import Console

from harness.common.errors import UserError
from harness.models.local_server import DEFAULT_N_CTX, TOOL_CHAT_FORMAT, LocalServer


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve_local(
    port: int | None = typer.Option(None, "--port", help="Port to listen on (default: a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. The server has no authentication."),
    ctx: int = typer.Option(DEFAULT_N_CTX, "--ctx", help="Context size in tokens (prompt + answer)."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads (default: half the cores)."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for the server to become healthy."),
    tools: bool = typer.Option(False, "--tools", help=f"Serve with llama.cpp's {TOOL_CHAT_FORMAT} chat format, "
                               "so `eval --agent --base-url ...` gets native tool calls (what eval --agent uses "
                               "for its own embedded server). Default: the model's own chat template, as one-shot "
                               "evals use."),
    chat_format: str | None = typer.Option(None, "--chat-format", help="Any llama.cpp chat format by name "
                                           "(overrides --tools)."),
    no_prompt_cache: bool = typer.Option(False, "--no-prompt-cache", help="Do not keep evaluated prompts "
                                         "across calls."),
) -> None:
    """Serve the embedded model (SmolLM2-135M-Instruct) over the OpenAI-compatible API until Ctrl-C."""
    console = Console(soft_wrap=True)  # keep the URL on one line for copy-paste
    if port is not None and not 1 <= port <= 65535:
        raise UserError(f"--port: {port} is not a port number (1-65535)")
    if not _is_loopback(host):
        console.print(f"[yellow]warning:[/yellow] listening on {host} exposes an unauthenticated model server")
    server = LocalServer(port=port, host=host, n_ctx=ctx, threads=threads, timeout_s=timeout,
                         chat_format=chat_format or (TOOL_CHAT_FORMAT if tools else None),
                         prompt_cache=not no_prompt_cache)
    with console.status("starting the embedded model server..."):
        server.start()
    try:
        console.print(
            f"serving [bold]{server.model_id}[/bold] at [bold]{server.base_url}[/bold] "
            f"(ready in {server.start_s:.1f} s, pid {server.pid}, log {server.log_path})"
        )
        agent = " --agent" if server.chat_format == TOOL_CHAT_FORMAT else ""
        console.print(f"use it with:  kernelgrade eval ...{agent} --base-url {server.base_url} --model {server.model_id}")
        console.print("press Ctrl-C to stop")
        while server.alive():
            time.sleep(0.5)
        raise UserError(
            f"the local model server exited with code {server.returncode()} (log: {server.log_path})"
        )
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        server.stop()


def register(app: typer.Typer) -> None:
    app.command("serve-local")(serve_local)
