"""doc_events → engine. Every handler returns at once for a doctype without enabled rules.

The handlers are "*" hooks: they run on every save of every doctype, also while the app is being
installed or migrated and on a site where its tables are missing. Nothing here may break such a
save: when the app's tables do not exist yet, or its rules cannot be loaded, automation does
nothing (and a loading failure is written to the Error Log once per process).
"""

import frappe

from crm_automation.runtime.compiled_cache import versioned_memo
from crm_automation.runtime.workflow_rules import EXCLUDED_DOCTYPES, get_rules
from crm_automation.setup.custom_fields import SCORED_DOCTYPES

# Imports inside the handlers below are on purpose: these run on every save of every doctype, and a
# save with no automation must not load the runner, scoring, escalations or sequences (their
# indexes register when first imported; see tests/test_lean_paths.py).


def on_validate(doc, method=None):
	if _ignored(doc):
		return
	work = _work()
	if doc.doctype not in work["any"]:
		return
	if doc.doctype in work["score"] and not skip_automation():
		from crm_automation.scoring import score_on_save

		score_on_save(doc)
	_run(doc, "validate")


def on_after_insert(doc, method=None):
	if not _ignored(doc) and doc.doctype in _work()["any"]:
		_run(doc, "after_insert")


def on_update(doc, method=None):
	if _ignored(doc) or doc.doctype not in _work()["any"]:
		return
	if doc.flags.crm_score_band_change:
		from crm_automation.scoring import after_save

		after_save(doc)
	_run(doc, "on_update")


def on_change(doc, method=None):
	"""on_change runs after every save and every db_set: the one place to keep escalation clocks and
	follow-up sequences (exit conditions, Until Condition waits) in step with the document."""
	if _ignored(doc):
		return
	work = _work()
	if doc.doctype not in work["any"]:
		return
	_run(doc, "on_change")
	if doc.doctype in work["escalation"] and doc.doctype != "Escalation State" and not skip_automation():
		from crm_automation.escalation import sync_document

		sync_document(doc)
	if doc.doctype in work["sequence"] and not skip_automation():
		from crm_automation.sequences.steps import on_document_change

		on_document_change(doc)


def on_submit(doc, method=None):
	if not _ignored(doc) and doc.doctype in _work()["any"]:
		_run(doc, "on_submit")


def on_cancel(doc, method=None):
	if not _ignored(doc) and doc.doctype in _work()["any"]:
		_run(doc, "on_cancel")
		_end_sequences(doc, "cancelled")


def on_trash(doc, method=None):
	if not _ignored(doc) and doc.doctype in _work()["any"]:
		_run(doc, "on_trash")
		_end_sequences(doc, "deleted")


# engine.workflow.EVENTS_BY_TRIGGER["Communication Received"], named here so a save loads no engine.
_REPLY_EVENT = "communication_received"


def on_communication_insert(doc, method=None):
	"""An incoming e-mail, as Frappe's mail pull inserts it (Received, Email): the Communication
	Received rules and the follow-up sequences of the documents it belongs to (runtime/replies.py,
	sequences/replies.py). Nothing for a sent e-mail, another medium, or while no rule or sequence
	listens; nothing that goes wrong here fails the insert (logged)."""
	if doc.sent_or_received != "Received" or doc.communication_medium != "Email" or skip_automation():
		return
	work = _loaded(_reply_work)
	if not work or not (work["rules"] or work["sequence"]):
		return
	from crm_automation.runtime import replies

	if not replies.is_reply(doc):
		return
	try:
		targets = replies.reply_targets(doc, work["rules"] | work["sequence"])
	except Exception:
		frappe.log_error(title=f"CRM Automation could not find the documents of {doc.name}")
		return
	if targets:
		from crm_automation.sequences.replies import on_reply

		on_reply(targets)
		replies.run_reply_rules(doc, targets)


def _reply_work():
	"""Doctypes that hear replies: with a Communication Received rule, or with follow-up sequences
	(worked out as _work is, without loading the runner)."""
	return versioned_memo("reply_doctypes", _reply_doctypes)


def _reply_doctypes():
	from crm_automation.runtime.workflow_rules import get_index

	rules = frozenset(
		key[0] for key in (_loaded(get_index) or {}) if isinstance(key, tuple) and key[1] == _REPLY_EVENT
	)
	return {"rules": rules, "sequence": _work()["sequence"]}


def _ignored(doc):
	"""Our own bookkeeping, and saves during install, patches, migrate, imports or the setup wizard:
	checked once per handler, before any lookup (the app's tables may not exist yet)."""
	return doc.doctype in EXCLUDED_DOCTYPES or skip_for_flags()


def _run(doc, event):
	"""Workflow Rules for (doctype, event): a dict lookup for a doctype without rules."""
	rules = _loaded(get_rules, doc.doctype, event)
	if not rules or skip_automation():
		return
	from crm_automation.runtime.runner import run_rules

	run_rules(doc, event, rules)


def _end_sequences(doc, why):
	"""Deleting or cancelling a document ends its pending steps, even with automation switched off."""
	if doc.doctype in _work()["sequence"]:
		from crm_automation.sequences.steps import on_document_gone

		on_document_gone(doc, why)


def skip_for_flags():
	"""No automation while installing, patching, migrating, importing data or running the setup
	wizard: those saves are not users' work, and the app's tables may not exist yet."""
	flags = frappe.local.flags  # the object frappe.flags stands for, without the proxy on each read
	return bool(
		flags.in_install or flags.in_patch or flags.in_migrate or flags.in_import or flags.in_setup_wizard
	)


def _work():
	"""Doctypes with any work ("any": a Workflow Rule for some event, an enabled Escalation Policy,
	Lead Score Rule, or follow-up sequences that are enabled or still pending, see
	sequences.sequence_doctypes), worked out once per process until an index changes: a save of
	any other doctype returns after one set lookup per handler. Workflow Rules are looked up per
	(doctype, event) in _run."""
	return versioned_memo("doctypes_with_work", _doctypes_with_work)


def _doctypes_with_work():
	from crm_automation.escalation import policy_index
	from crm_automation.runtime.workflow_rules import get_index as rule_index
	from crm_automation.scoring import get_score_rule
	from crm_automation.sequences.steps import sequence_doctypes

	policies = _loaded(policy_index)
	work = {
		"rules": frozenset(key[0] for key in (_loaded(rule_index) or {}) if isinstance(key, tuple)),
		"escalation": frozenset(
			doctype for doctype, found in (policies or {}).get("by_doctype", {}).items() if found
		),
		"score": frozenset(doctype for doctype in SCORED_DOCTYPES if _loaded(get_score_rule, doctype)),
		"sequence": frozenset(_loaded(sequence_doctypes) or ()),
	}
	work["any"] = frozenset().union(*work.values())
	return work


def skip_automation():
	"""The one guard: the flags above, or automation switched off in CRM Automation Settings."""
	if skip_for_flags():
		return True
	return not _loaded(_automation_enabled)


def _automation_enabled():
	return frappe.db.get_single_value("CRM Automation Settings", "enabled", cache=True)


_load_failures_logged = set()


def _loaded(loader, *args):
	"""What a rule loader returns, or nothing when the app cannot load its rules on this site."""
	try:
		return loader(*args)
	except Exception as error:
		if _tables_missing(error):
			return None
		name = getattr(loader, "__name__", type(loader).__name__)
		key = (frappe.local.site, name)
		if key not in _load_failures_logged:
			_load_failures_logged.add(key)
			frappe.log_error(title=f"CRM Automation could not load its rules ({name})")
		return None


def _tables_missing(error):
	"""The app is listed for the site but its doctypes are not synced yet (install, migrate, a
	half-installed site)."""
	if isinstance(error, frappe.DoesNotExistError):
		return True
	if isinstance(error, frappe.db.TableMissingError) and error.args[:1] == ("DocType",):
		return True  # Frappe's own "no table for this doctype" (frappe.db.get_all on a missing one)
	try:
		return frappe.db.is_table_missing(error)
	except Exception:
		return False
