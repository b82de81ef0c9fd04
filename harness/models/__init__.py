"""Model back ends behind one interface: Anthropic, OpenAI, any OpenAI-compatible server."""

from harness.models.base import ChatRequest, Completion, ModelCallError, ModelClient

__all__ = ["ChatRequest", "Completion", "ModelCallError", "ModelClient"]
