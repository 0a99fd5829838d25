"""Moved to crm_automation.scheduler; this alias is kept for one release (queued jobs, clients)."""

from crm_automation.scheduler import (
	apply_decay_for_all_score_rules,
	fire_due_documents,
	retry_webhooks_for_all_logs,
	run_time_trigger,
	run_time_triggers_for_all_rules,
)
