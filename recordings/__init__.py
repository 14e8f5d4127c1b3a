"""Server-side recording of calls (to come: see the recording issue)."""
