"""Endpoint monitoring: registered TLS endpoints, probed on a schedule for trust, name, expiry and drift."""
