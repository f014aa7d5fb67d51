"""Managed renewal: policies, the plan kept on every certificate, the scheduler, the renewal job, expiry notices."""
