"""Events the registry announces to other apps, so it does not depend on them.

``release_published`` is sent once the transaction that published a release has committed, with
``release_id``.
"""

from django.dispatch import Signal

release_published = Signal()
