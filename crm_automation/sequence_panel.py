"""Moved to crm_automation.api.sequence_panel; this alias is kept for one release (queued jobs, clients)."""

from crm_automation.api.sequence_panel import (  # noqa: F401
	cancel_step,
	describe_timeline,
	get_pending_steps,
	skip_step,
)
