"""Metric library of medigan hub: feature extractors, FID and friends, streaming evaluation.

No Django: the hub calls it from a Celery task, anyone can call it from a script.
"""
