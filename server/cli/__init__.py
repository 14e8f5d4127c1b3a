"""The ``vwindow`` command line: serve (with the demo mode and its sample history), identities, records."""
