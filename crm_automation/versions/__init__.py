"""Versions of Workflow Rules: a snapshot on every save that changes a rule (`snapshots`), the
history in words, a revert that is a new save (`revert`), and two versions replayed side by side
over recent documents (`replay`)."""
