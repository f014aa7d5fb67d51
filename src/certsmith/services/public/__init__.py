"""Public certificates: issuers, validation by persistent CNAME delegation, ordering from ACME CAs."""
