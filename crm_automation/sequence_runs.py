"""Moved to crm_automation.sequences.runs; this alias is kept for one release (queued jobs, clients)."""

from crm_automation.sequences.runs import (
	fire_steps,
	sweep,
)
