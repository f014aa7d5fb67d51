"""Events: the outbox they are written to in the change's own transaction (delivery comes later)."""
