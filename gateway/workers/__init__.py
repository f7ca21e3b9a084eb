"""`tillgate serve --workers N`: N gateway processes on the same ports, one supervisor."""
