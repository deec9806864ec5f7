"""Test fixtures that start real external programs (Jaeger, Chromium); loaded from tests/conftest.py."""
