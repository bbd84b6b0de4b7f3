"""Fixtures shared by the provider tests: a local OpenAI-compatible server per test."""

import pytest

from tests.fakes import openai_server


@pytest.fixture
def server():
    """A fresh OpenAI-wire server on 127.0.0.1, stopped after the test."""
    with openai_server.OpenAIServer() as fake:
        yield fake
