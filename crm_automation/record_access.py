"""Moved to crm_automation.trust.record_access; this alias is kept for one release (queued jobs, clients)."""

from crm_automation.trust.record_access import (
	has_reference_permission,
	log_action_query_conditions,
	reference_query_conditions,
)
