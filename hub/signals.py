"""Events one app announces and another answers, so that neither imports the other.

- ``release_published`` (sender: the release model; ``release_id``) is sent by the registry once
  the transaction that published a release has committed. Evaluations answer it by queueing
  the release's standard evaluations.
- ``evaluation_finished`` (sender: the evaluation model; ``evaluation_id``, ``release_id``) is
  sent by evaluations inside the transaction that stores a finished evaluation's numbers. The
  registry answers it by bumping the catalogue serial in that same transaction: the snapshot
  carries the numbers, and the registry alone writes the serial.
"""

from django.dispatch import Signal

release_published = Signal()
evaluation_finished = Signal()
