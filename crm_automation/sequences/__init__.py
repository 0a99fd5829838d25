"""Follow-up sequences: starting and following them on saves (steps.py), firing due steps (runs.py)."""
