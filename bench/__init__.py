"""`make chaos` and `make bench`: scripts that run the dialer's processes on an embedded Redis."""
