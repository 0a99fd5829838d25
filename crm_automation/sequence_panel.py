"""Moved to crm_automation.api.sequence_panel; this alias is kept for one release (queued jobs, clients)."""

from crm_automation.api.sequence_panel import (
	cancel_step,
	describe_timeline,
	get_pending_steps,
	skip_step,
)
