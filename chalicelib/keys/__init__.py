"""API keys: issuing, hashing, revoking."""
