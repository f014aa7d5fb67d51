"""ACM-PCA: certificate authorities, issuance, revocation (CRL, OCSP), audit reports."""
