"""A rule's follow-up steps as a timeline: the steps a document would follow from a moment, for the
dry run and the rule form."""

from frappe import _

from crm_automation.engine.i18n import translating
from crm_automation.engine.sequence_story import timeline, timeline_text
from crm_automation.runtime.linked_values import field_values
from crm_automation.runtime.workflow_rules import get_fields


def immediate_actions(rule):
	return [action.as_dict() for action in rule.actions if not action.get("step")]


def dry_run_schedule(rule_doc, compiled, doc, start):
	"""The timeline a document would follow from ``start``, as dry-run schedule entries."""
	with translating(_):  # the steps' words in the reader's language
		entries = timeline(
			immediate_actions(rule_doc),
			compiled.sequence,
			get_fields(rule_doc.document_type),
			field_values(doc),
			start,
		)
		text = timeline_text(entries)
	schedule = []
	for entry in entries[1:]:
		what = entry["when"]
		if entry["only_if"]:
			what += " " + _("if {0}").format(entry["only_if"])
		what += ": " + (", ".join(entry["actions"]) or _("nothing"))
		if entry["on_timeout"]:
			what += "; " + _("on timeout: {0}").format(", ".join(entry["on_timeout"]))
		at = str(entry["at"]) if entry["at"] else _("passed over (no date or already past)")
		schedule.append({"at": at, "what": what})
	return schedule, text
