"""Plumbing every app's API views share: error bodies, limited parsers, parameters, permissions.

No routes and no views of an app live here (the routes are in ``hub.urls``), and nothing here
imports an app other than accounts, so every app may use it without depending on another.
"""
