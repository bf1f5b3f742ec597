"""Web pages of the hub for people: the catalogue in a browser."""
