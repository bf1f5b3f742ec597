"""Running model packages: import by path in this process, or in a sandboxed child process.

:mod:`.loader` imports a package's ``__init__.py`` by path and adapts its ``generate`` to one
batch call; :mod:`.sandbox` runs that in a child process with limits; :mod:`.child` is the
child's entry point. torch is never imported here at package import time.
"""
