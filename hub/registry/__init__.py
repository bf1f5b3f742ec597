"""Registry: generative models, their releases, artifacts, validation checks and audit events."""
