"""Custom fields on ERPNext's doctypes, created in code at install and removed at uninstall.

Each feature adds its fields here (doctype → list of Custom Field dicts, as
``frappe.custom.doctype.custom_field.custom_field.create_custom_fields`` takes them)."""

SCORED_DOCTYPES = ("Lead", "Opportunity", "Customer")


def score_fields():
	"""Lead scoring: what a Lead Score Rule writes, and where the form explains it."""
	return [
		{"fieldname": "crm_score_section", "fieldtype": "Section Break", "label": "Lead Score", "collapsible": 1},
		{
			"fieldname": "crm_score",
			"fieldtype": "Float",
			"label": "Score",
			"read_only": 1,
			"no_copy": 1,
			"in_standard_filter": 1,
			"precision": "1",
		},
		{"fieldname": "crm_score_grade", "fieldtype": "Data", "label": "Grade", "read_only": 1, "no_copy": 1, "in_standard_filter": 1, "in_list_view": 1},
		{"fieldname": "crm_score_priority", "fieldtype": "Data", "label": "Score Priority", "read_only": 1, "no_copy": 1},
		{"fieldname": "crm_score_column", "fieldtype": "Column Break"},
		{"fieldname": "crm_scored_on", "fieldtype": "Datetime", "label": "Scored On", "read_only": 1, "no_copy": 1},
		{"fieldname": "crm_score_explanation", "fieldtype": "HTML", "label": "Why This Score"},
		{"fieldname": "crm_score_breakdown", "fieldtype": "Code", "label": "Score Breakdown", "options": "JSON", "read_only": 1, "no_copy": 1, "hidden": 1},
	]


def get_custom_fields():
	return {doctype: score_fields() for doctype in SCORED_DOCTYPES}
