"""Every whitelisted method of the app, one module per screen: each checks rights, then delegates.

The ``crm_automation.api.<method>`` paths that were public before the methods moved into this
package keep working: the names below are the same function objects, so Frappe's whitelist check
passes for them.
"""

from crm_automation.api.automations import (
	dry_run_rule,
	get_applicable_automations,
	get_automation_history,
	get_condition_fields,
	get_escalation_status,
	get_manual_rules,
	hours_saved_this_week,
	replay_rule_on_documents,
	retry_failed_actions,
	run_manual_rule,
	track_activity,
)

# The desk called it replay_rule until this release; the same function under its old name.
replay_rule = replay_rule_on_documents

__all__ = [
	"dry_run_rule",
	"get_applicable_automations",
	"get_automation_history",
	"get_condition_fields",
	"get_escalation_status",
	"get_manual_rules",
	"hours_saved_this_week",
	"replay_rule",
	"replay_rule_on_documents",
	"retry_failed_actions",
	"run_manual_rule",
	"track_activity",
]
