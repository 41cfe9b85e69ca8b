"""Media processing on call audio: pure, I/O-free signal analysis fed by the dialer's legs."""
