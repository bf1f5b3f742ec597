"""Evaluations: reference sets of real images and hub-computed metrics of published releases."""
