"""Deployment: the places certificates are served from (``targets/``) and the agent that deploys on hosts certsmith
cannot reach (``agent/``)."""
