"""The held-out reference sets that ship with the project, one ``<id>.npz`` per set.

Each file holds the exact pixels of one split of ``evaluation.references.REFERENCE_SETS`` (arrays
``images`` and ``source_paths``), so a fresh clone evaluates against the same images, with the
same ``images_sha256``, as a machine with ../shared/data. ``README.md`` here gives each set's
source, licence, citation and processing; ``python -m evaluation.reference_data.build``
regenerates the files from ../shared/data, byte for byte.
"""
