"""Pure domain rules: no I/O, no framework imports. HTTP, storage and workers call into here."""
