"""Tests of medigan_client.compat: medigan's Generators API on a hub."""
