"""Use cases: domain rules combined with storage and limits. HTTP handlers and workers call these."""
