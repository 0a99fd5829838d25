"""Follow-up sequences and replies: an incoming e-mail that belongs to a document (runtime/replies.py)
ends its sequences that stop on a reply (Stop When the Document Gets a Reply: pending steps
Exited, "the document got a reply"), and ends an Until Reply wait early: as a save meeting an
Until Condition, it marks the step met and makes it due now, so the next sweep runs the step's
actions (not its On Timeout ones). A reply counts for the step waiting when it comes; replies
that came before the step began waiting do not.
"""

import types

from frappe import _
from frappe.utils import get_datetime

from crm_automation.engine import sequences as seq
from crm_automation.sequences import steps


def on_reply(targets, at=None):
	"""For each (doctype, name) an e-mail belongs to: its pending steps hear of the reply. A failure
	is logged and never breaks the insert of the e-mail."""
	doctypes = steps.sequence_doctypes() or ()
	for doctype, name in targets:
		if doctype in doctypes:
			steps._guarded(
				_hear_reply,
				types.SimpleNamespace(doctype=doctype, name=name),
				at,
				title=f"Follow-up steps of {doctype} {name} could not follow a reply",
			)


def _hear_reply(doc, at):
	at = at or steps.now()
	for row in steps._pending_rows(doc):
		compiled, _snapshot = steps.compiled_definition(row.definition)
		sequence = compiled.sequence
		reason = sequence.reply_exit_reason()
		if reason:
			steps._finish(row.name, steps.EXITED, _("Ended: {0}").format(reason), at, expect=steps.PENDING)
			continue
		step = sequence.step(row.step_index)
		if step is not None and step.wait_type == seq.WAIT_REPLY and not row.condition_met:
			steps._update_pending(
				row.name,
				condition_met=1,
				due_at=min(get_datetime(row.due_at), max(at, get_datetime(row.anchor_at))),
			)
