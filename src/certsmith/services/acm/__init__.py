"""ACM: certificates requested from a CA, imported, exported, renewed, searched; the key pool."""
