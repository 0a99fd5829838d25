# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe import _
from frappe.utils import add_days, nowdate

from crm_automation.crm_automation.report.automation_efficacy.automation_efficacy import (
	hours_per_week,
	load_logs,
)


@frappe.whitelist()
def get(chart_name=None, chart=None, no_cache=None, filters=None, from_date=None, to_date=None, timespan=None, time_interval=None, heatmap_year=None):
	"""Hours saved per week over the last twelve weeks."""
	frappe.has_permission("Automation Log", "read", throw=True)
	weeks = hours_per_week(load_logs(frappe._dict(from_date=add_days(nowdate(), -84), to_date=nowdate())))
	return {
		"labels": [str(week) for week in weeks],
		"datasets": [{"name": _("Hours saved"), "values": [round(hours, 2) for hours in weeks.values()]}],
	}
