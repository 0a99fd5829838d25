"""Moved to crm_automation.offline.cli; this alias is kept for one release (queued jobs, clients)."""

from crm_automation.offline.cli import (
	main,
)
