"""Dialers: one interface (base.py), one class per outlet (simulated line, SIP user agent)."""
