"""The end-to-end tier: the real processes of `make dev`, driven over HTTP like a client.

`dev_stack` (FAST_FILES) is session-wide in tests/conftest.py, shared with tests/client.
"""
