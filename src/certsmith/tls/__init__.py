"""The server's own HTTPS: a certificate and key given by the operator, or ``--tls auto``."""
