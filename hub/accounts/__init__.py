"""Accounts: users, the reviewer group and API tokens."""
