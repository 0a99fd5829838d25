"""Moved to crm_automation.api.rule_sentence; this alias is kept for one release (queued jobs, clients)."""

from crm_automation.api.rule_sentence import (
	get_rule_sentence,
)
