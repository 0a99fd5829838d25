"""The command line, the simulator and its file readers. Nothing here imports frappe."""
