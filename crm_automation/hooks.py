app_name = "crm_automation"
app_title = "CRM Automation"
app_publisher = "crm_automation developers"
app_description = "No-code CRM automation for ERPNext: workflow rules, lead scoring and escalations"
app_email = "dev@crm-automation.invalid"
app_license = "MIT"

required_apps = ["frappe/erpnext"]

export_python_type_annotations = True

# Includes in <head>
# ------------------

# Adds "Automations" to every form: why automation did what it did, and Manual rules to run.
app_include_js = [
	"/assets/crm_automation/js/condition_builder.js",
	"/assets/crm_automation/js/automation_form.js",
]

# Installation
# ------------

after_install = "crm_automation.setup.install.after_install"
before_uninstall = "crm_automation.setup.install.before_uninstall"
after_migrate = "crm_automation.setup.install.after_migrate"

# Testing
# -------

before_tests = "crm_automation.setup.install.before_tests"

# Fixtures: only filtered records of our own, never rules that users edit
# -----------------------------------------------------------------------

fixtures = [
	{"dt": "Role", "filters": [["name", "in", ["CRM Automation Manager"]]]},
]

# Document Events
# ---------------
# "*" because a rule may name any doctype; each handler returns at once for a doctype
# without enabled rules (a cached lookup, no query).

doc_events = {
	"*": {
		"validate": "crm_automation.doc_events.on_validate",
		"after_insert": "crm_automation.doc_events.on_after_insert",
		"on_update": "crm_automation.doc_events.on_update",
		"on_change": "crm_automation.doc_events.on_change",
		"on_submit": "crm_automation.doc_events.on_submit",
		"on_cancel": "crm_automation.doc_events.on_cancel",
		"on_trash": "crm_automation.doc_events.on_trash",
	},
	# An incoming e-mail: Communication Received rules and replies to follow-up sequences.
	"Communication": {"after_insert": "crm_automation.doc_events.on_communication_insert"},
}

# Records about a document (logs, occurrences, escalation clocks, tracked activities, follow-up
# steps) are readable only by those who may read the document (System Managers read all).
has_permission = {
	"Automation Log": "crm_automation.trust.record_access.has_reference_permission",
	"Automation Occurrence": "crm_automation.trust.record_access.has_reference_permission",
	"Escalation State": "crm_automation.trust.record_access.has_reference_permission",
	"CRM Activity": "crm_automation.trust.record_access.has_reference_permission",
	"Automation Sequence Step": "crm_automation.trust.record_access.has_reference_permission",
	# When a user is away: theirs, their managers' (Employee Reports To) and System Managers' only.
	"User Availability": "crm_automation.trust.availability_access.has_availability_permission",
}
permission_query_conditions = {
	"Automation Log": "crm_automation.trust.record_access.reference_query_conditions",
	"Automation Log Action": "crm_automation.trust.record_access.log_action_query_conditions",
	"Automation Occurrence": "crm_automation.trust.record_access.reference_query_conditions",
	"Escalation State": "crm_automation.trust.record_access.reference_query_conditions",
	"CRM Activity": "crm_automation.trust.record_access.reference_query_conditions",
	"Automation Sequence Step": "crm_automation.trust.record_access.reference_query_conditions",
	"User Availability": "crm_automation.trust.availability_access.availability_query_conditions",
	"User Availability Period": "crm_automation.trust.availability_access.period_query_conditions",
}

# Logs and occurrences must never stop a user from deleting the document they describe.
ignore_links_on_delete = [
	"Automation Log",
	"Automation Log Action",
	"Automation Occurrence",
	"Escalation State",
	"Automation Sequence Step",
	"Automation Sequence Definition",
]

# Request Events
# ----------------
# Loop protection lets a rule fire once per document per request or job: start each afresh.

before_request = ["crm_automation.runtime.run_state.reset_request_state"]
before_job = ["crm_automation.runtime.run_state.reset_request_state"]

# Scheduled Tasks
# ---------------

# Frappe's Log Settings clears these (days, changeable there); runtime/retention.py says what stays.
default_log_clearing_doctypes = {
	"Automation Log": 90,
	"Automation Sequence Step": 90,
	"CRM Activity": 365,
}

scheduler_events = {
	"cron": {
		"* * * * *": [
			"crm_automation.scheduler.fire_due_steps_for_all_sequences",
			"crm_automation.scheduler.run_schedules_for_all_rules",
		],
		"*/5 * * * *": [
			"crm_automation.scheduler.run_time_triggers_for_all_rules",
			"crm_automation.scheduler.run_escalations_for_all_policies",
		],
	},
	"daily_long": [
		"crm_automation.scheduler.apply_decay_for_all_score_rules",
	],
}
