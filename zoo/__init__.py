"""Recipes that train the project's own demo generative models on real data, and their cards."""
