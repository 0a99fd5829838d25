# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

"""Documents whose clocks are running and have escalated or are overdue, by level."""

import frappe
from frappe import _
from frappe.utils import get_datetime, now_datetime


def execute(filters=None):
	filters = frappe._dict(filters or {})
	conditions = {"status": ("in", ("Active", "Paused"))}
	if filters.policy:
		conditions["policy"] = filters.policy
	# get_list: a manager sees the clocks of the documents they may read, nothing of the others.
	states = frappe.get_list(
		"Escalation State",
		filters=conditions,
		fields=["policy", "reference_doctype", "reference_name", "status", "current_level", "clock_started_on", "next_escalation", "next_escalation_on", "last_escalated_on"],
		order_by="current_level desc, next_escalation_on asc",
	)
	now = now_datetime()
	data = []
	for state in states:
		overdue = state.next_escalation_on and get_datetime(state.next_escalation_on) < now
		if not (state.current_level or overdue):
			continue
		if filters.level and (state.current_level or 0) < filters.level:
			continue
		state.overdue_hours = round((now - get_datetime(state.next_escalation_on)).total_seconds() / 3600, 1) if overdue else 0
		data.append(state)
	columns = [
		{"fieldname": "policy", "label": _("Policy"), "fieldtype": "Link", "options": "Escalation Policy", "width": 180},
		{"fieldname": "reference_doctype", "label": _("Type"), "fieldtype": "Link", "options": "DocType", "width": 110},
		{"fieldname": "reference_name", "label": _("Document"), "fieldtype": "Dynamic Link", "options": "reference_doctype", "width": 170},
		{"fieldname": "current_level", "label": _("Level"), "fieldtype": "Int", "width": 70},
		{"fieldname": "status", "label": _("Clock"), "fieldtype": "Data", "width": 80},
		{"fieldname": "clock_started_on", "label": _("Clock Started"), "fieldtype": "Datetime", "width": 160},
		{"fieldname": "next_escalation", "label": _("Next"), "fieldtype": "Data", "width": 170},
		{"fieldname": "next_escalation_on", "label": _("Next At"), "fieldtype": "Datetime", "width": 160},
		{"fieldname": "overdue_hours", "label": _("Overdue (Hours)"), "fieldtype": "Float", "width": 120},
	]
	return columns, data
