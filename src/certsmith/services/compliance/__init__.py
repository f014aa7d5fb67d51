"""The compliance report: every certificate of an account checked against the rules of `domain/compliance.py`."""
