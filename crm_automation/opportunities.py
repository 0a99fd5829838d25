"""Moved to crm_automation.api.opportunities; this alias is kept for one release (queued jobs, clients)."""

from crm_automation.api.opportunities import (
	create_rule_from_proposal,
	replay_rule,
)
