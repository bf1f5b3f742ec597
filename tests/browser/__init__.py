"""Browser tests: Debian's Chromium, driven by Playwright, against a live hub.

They walk the pages as a visitor does, check them with axe-core, take screenshots and check that
hostile card text stays inert; ``conftest.py`` starts the hub and the browser once per session.
"""
