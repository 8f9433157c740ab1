"""Signed job-end events: URL policy, signing, sending and delivery."""
