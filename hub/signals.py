"""Events one app announces and another answers, so that neither imports the other.

- ``release_published`` (sender: the release model; ``release_id``) is sent by the registry once
  the transaction that published a release has committed. Evaluations answer it by queueing
  the release's standard evaluations.
- ``release_state_changed`` (sender: the release model; ``release_id``, ``from_state``,
  ``to_state``, ``event_id``) is sent by the registry once the transaction of any lifecycle
  transition has committed. Apps that tell the outside world (a GitHub commit status, a DOI
  deposit) answer it; it never changes the transition.
- ``evaluation_finished`` (sender: the evaluation model; ``evaluation_id``, ``release_id``) is
  sent by evaluations inside the transaction that stores a finished evaluation's numbers. The
  registry answers it by bumping the catalogue serial in that same transaction: the snapshot
  carries the numbers, and the registry alone writes the serial.
"""

from django.dispatch import Signal

release_published = Signal()
release_state_changed = Signal()
evaluation_finished = Signal()
