"""HTTP surface: routes' helpers, documents on the wire, live updates, auth and rate limits."""
