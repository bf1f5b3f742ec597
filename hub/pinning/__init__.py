"""DOI pinning: a release's package tied to a Zenodo record before it is published, re-checked."""
