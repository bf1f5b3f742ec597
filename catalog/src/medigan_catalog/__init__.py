"""Shared vocabulary of medigan hub: card schema, lifecycle, search, packaging rules."""
