"""Moved to crm_automation.doc_events; this alias is kept for one release (queued jobs, clients)."""

from crm_automation.doc_events import (
	on_after_insert,
	on_cancel,
	on_change,
	on_submit,
	on_trash,
	on_update,
	on_validate,
)
