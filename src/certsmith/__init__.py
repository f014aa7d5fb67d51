"""certsmith: a self-hosted certificate manager speaking the ACM and ACM-PCA APIs."""

__version__ = "0.1.0"
