"""The hub's HTTP API: routing, error bodies and permissions shared by every app's views."""
