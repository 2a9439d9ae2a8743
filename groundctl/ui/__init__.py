"""The console: a Textual app over the engine (which runs in a thread of its own).

Only this package imports Textual. `backend` runs the ground segment; `state` is what the
console shows, taken from the bus; `app` lays out the panes (`panes/`) and the status bar.
"""
