"""Deployment: certificates bound to targets, each new version deployed to them, verified, rolled back."""
