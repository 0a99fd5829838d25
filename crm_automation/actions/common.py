"""What every action family shares: its error type, template rendering and minutes saved."""

import frappe
from frappe import _

from crm_automation.engine import workflow as wf
from crm_automation.engine.templates import TemplateError, render_template
from crm_automation.runtime.trigger_values import current_trigger_values
from crm_automation.runtime.workflow_rules import readable_plain_values
from crm_automation.trust.run_as_reads import reader_for, reading_user


class ActionError(frappe.ValidationError):
	"""An action that cannot be carried out for a reason the administrator can fix."""


def render(template, doc, before):
	"""A rule's template in the read-only sandbox: it sees the document's values, never the Document,
	and both those values and its get_value reads are what the rule's run-as user may read
	(rule_reads.reading_as, set by the caller; fields above that user's levels are absent).
	A template that fails or reaches for what it may not fails its action (ActionError)."""
	if not template or not wf.is_template(template):
		return template or ""
	user = reading_user()
	values = readable_plain_values(doc, user)
	before_values = readable_plain_values(before, user, (values or {}).get("doctype"))
	try:
		return render_template(
			template, values, before_values, extra=current_trigger_values(), read=reader_for(user)
		)
	except TemplateError as error:
		raise ActionError(_("Template could not be rendered: {0}").format(error.first.message))
	except Exception as error:
		raise ActionError(_("Template could not be rendered: {0}").format(error_summary(error)))


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
