"""Moved to crm_automation.api.linked_field_pickers; this alias is kept for one release (queued jobs, clients)."""

from crm_automation.api.linked_field_pickers import (
	get_action_pickers,
	get_linked_condition_fields,
)
