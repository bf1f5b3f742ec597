"""Equality of Generators with medigan 1.0.0 itself, run where medigan is installed."""
