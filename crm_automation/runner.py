"""Moved to crm_automation.runtime.runner; this alias is kept for one release (queued jobs, clients)."""

from crm_automation.runtime.runner import (
	reset_request_state,
)
