"""Template tags of the registry's admin pages."""
