"""What every action family shares: its error type, template rendering and minutes saved."""

import frappe
from frappe import _

from crm_automation.engine import workflow as wf


class ActionError(frappe.ValidationError):
	"""An action that cannot be carried out for a reason the administrator can fix."""


def render(template, doc, before):
	if not template or not wf.is_template(template):
		return template or ""
	return frappe.render_template(template, {"doc": doc, "old_doc": before})


def error_summary(error):
	text = frappe.utils.strip_html(str(error)) or error.__class__.__name__
	return text[:500]


def minutes_saved(rule, results, settings):
	if getattr(rule, "minutes_saved_override", None):
		return rule.minutes_saved_override
	return sum(r.get("minutes_saved") or 0 for r in results)


def default_minutes(action_type):
	fieldname = "minutes_" + frappe.scrub(action_type)
	return frappe.get_cached_doc("CRM Automation Settings").get(fieldname) or 0
