"""``make bench``: measurements, not tests. See ``bench/README.md``."""
