"""Lead scoring on a site: counts of recent activity in batched SQL, the engine's score, and what a
band change sets off (a timeline comment and Score Band Changed workflow rules).

On save the score is recomputed in the same transaction (a handful of indexed queries); a rule
change recomputes every document of its doctype in batches in the background; decay is applied by
a daily job.
"""

import json

import frappe
from frappe import _
from frappe.utils import add_days, get_datetime, now_datetime

from crm_automation.engine.scoring import compile_score_rule
from crm_automation.runtime.compiled_cache import CompiledCache
from crm_automation.runtime.runner import run_rule
from crm_automation.runtime.savepoints import run_alone
from crm_automation.runtime.workflow_rules import get_fields, get_rules, parse_conditions
from crm_automation.setup.custom_fields import SCORED_DOCTYPES
from crm_automation.trust import field_writes, protected_doctypes
from crm_automation.trust import run_as as permissions
from crm_automation.trust.field_access import ReadableView, hidden_fields, readable_view

VERSION_KEY = "crm_automation:score_rules_version"
SCORE_VALUE_FIELDS = ("crm_score", "crm_score_grade", "crm_score_priority", "crm_scored_on", "crm_score_breakdown")
BATCH_SIZE = 2000

def score_rule_as_dict(rule):
	return {
		"name": rule.get("name"),
		"document_type": rule.get("document_type"),
		"criteria": [
			{"label": c.get("label"), "points": c.get("points"), "conditions": parse_conditions(c.get("conditions"))}
			for c in rule.get("criteria") or []
		],
		"activity_criteria": [
			{key: a.get(key) for key in ("activity_source", "activity_type", "days", "points", "cap", "label")}
			for a in rule.get("activity_criteria") or []
		],
		"decay_mode": rule.get("decay_mode"),
		"half_life_days": rule.get("half_life_days"),
		"points_per_week": rule.get("points_per_week"),
		"bands": [
			{key: b.get(key) for key in ("min_score", "grade", "priority", "set_field", "set_value")}
			for b in rule.get("bands") or []
		],
		"known_activity_types": set(frappe.get_all("CRM Activity Type", pluck="name")),
	}


def compile_score_rule_doc(rule):
	compiled = compile_score_rule(score_rule_as_dict(rule), get_fields(rule.document_type))
	compiled.run_as = rule.get("run_as") or rule.owner
	return compiled


def band_field_allowed(rule, doc, fieldname, value=None):
	"""A band's field is written only if the score rule's run-as user may write it on this document
	(rights change after a rule is saved); otherwise the score is kept and the refusal logged."""
	user = permissions.run_as_of(rule)
	try:
		permissions.check_run_as_user(user)
		protected_doctypes.check_not_protected(doc.doctype, user, _("Lead Score Rules"), document_type=True)
		# On a new document as well: creating is no right to change what someone else creates.
		permissions.check_can_write_document(doc, user)
		field_writes.check_field_writable(doc, fieldname, user)
		field_writes.check_link_permitted(doc, fieldname, value, user)
		field_writes.check_workflow_change(doc, fieldname, value, user, before=doc.get_doc_before_save())
	except (frappe.ValidationError, frappe.PermissionError) as error:
		frappe.log_error(
			title=f"Lead Score band did not set {fieldname} of {doc.doctype} {doc.name}", message=str(error)
		)
		return False
	return True


def _build_score_index():
	index = {}
	for name in frappe.get_all("Lead Score Rule", filters={"enabled": 1}, pluck="name"):
		rule = frappe.get_doc("Lead Score Rule", name)
		try:
			index[rule.document_type] = compile_score_rule_doc(rule)
		except Exception:
			frappe.log_error(title=f"Lead Score Rule {name} no longer compiles")
	return index


_score_cache = CompiledCache(VERSION_KEY, _build_score_index)


def get_score_rule(doctype):
	"""The enabled Lead Score Rule of a doctype, compiled once per process (None if there is none)."""
	if doctype not in SCORED_DOCTYPES:
		return None
	return _score_cache.get().get(doctype)


def clear_score_cache():
	_score_cache.clear()


# ----------------------------------------------------------------------------------------------
# Activity counts: one grouped query per activity criterion for a whole batch of documents


def _grouped(query, values):
	return dict(frappe.db.sql(query, values))


def count_activity(activity, doctype, names, now):
	since = add_days(now, -activity.days)
	values = {"doctype": doctype, "names": tuple(names), "since": since, "activity_type": activity.activity_type}
	source = activity.source
	if source == "CRM Activity":
		type_filter = "and activity_type = %(activity_type)s" if activity.activity_type else ""
		return _grouped(
			f"""select reference_name, count(*) from `tabCRM Activity`
			where reference_doctype = %(doctype)s and reference_name in %(names)s and creation >= %(since)s
			{type_filter} group by reference_name""",
			values,
		)
	if source == "Communication":
		return _grouped(
			"""select reference_name, count(*) from `tabCommunication`
			where reference_doctype = %(doctype)s and reference_name in %(names)s
			and communication_date >= %(since)s group by reference_name""",
			values,
		)
	if source == "Comment":
		return _grouped(
			"""select reference_name, count(*) from `tabComment`
			where reference_doctype = %(doctype)s and reference_name in %(names)s and comment_type = 'Comment'
			and creation >= %(since)s group by reference_name""",
			values,
		)
	if source == "ToDo":
		return _grouped(
			"""select reference_name, count(*) from `tabToDo`
			where reference_type = %(doctype)s and reference_name in %(names)s and creation >= %(since)s
			group by reference_name""",
			values,
		)
	if source == "Event":
		return _grouped(
			"""select participant.reference_docname, count(distinct event.name)
			from `tabEvent Participants` participant join `tabEvent` event on event.name = participant.parent
			where participant.reference_doctype = %(doctype)s and participant.reference_docname in %(names)s
			and event.starts_on >= %(since)s group by participant.reference_docname""",
			values,
		)
	if source == "Opportunity":
		return _grouped(
			"""select party_name, count(*) from `tabOpportunity`
			where opportunity_from = %(doctype)s and party_name in %(names)s and creation >= %(since)s
			group by party_name""",
			values,
		)
	return {}


def last_activity(doctype, names):
	"""When each document last saw activity: a CRM Activity, an email or a comment."""
	values = {"doctype": doctype, "names": tuple(names)}
	latest = {}
	for query in (
		"""select reference_name, max(creation) from `tabCRM Activity`
		where reference_doctype = %(doctype)s and reference_name in %(names)s group by reference_name""",
		"""select reference_name, max(communication_date) from `tabCommunication`
		where reference_doctype = %(doctype)s and reference_name in %(names)s group by reference_name""",
		"""select reference_name, max(creation) from `tabComment`
		where reference_doctype = %(doctype)s and reference_name in %(names)s and comment_type = 'Comment'
		group by reference_name""",
	):
		for name, moment in frappe.db.sql(query, values):
			if moment and (name not in latest or moment > latest[name]):
				latest[name] = moment
	return latest


def score_documents(rule, rows, now=None):
	"""Score many documents (dicts with name, creation and the criteria's fields) at once: the
	number of queries depends on the rule, not on the number of documents."""
	now = get_datetime(now) if now else now_datetime()
	names = [row["name"] for row in rows]
	if not names:
		return {}
	counts = {activity.key: count_activity(activity, rule.document_type, names, now) for activity in rule.activities}
	latest = last_activity(rule.document_type, names) if rule.decay_mode != "None" else {}
	results = {}
	hidden = hidden_fields(rule.document_type, permissions.run_as_of(rule))
	for row in rows:
		name = row["name"]
		activity_counts = {key: by_name.get(name, 0) for key, by_name in counts.items()}
		idle_since = max(filter(None, [latest.get(name), get_datetime(row.get("creation")) if row.get("creation") else None]), default=now)
		days_idle = max((now - idle_since).total_seconds() / 86400, 0)
		# Criteria see the document as the rule's run-as user may: fields above their levels absent.
		shown = ReadableView(row, hidden) if hidden else row
		results[name] = rule.score(shown, activity_counts, round(days_idle, 2))
	return results


def score_values(result, now):
	return {
		"crm_score": result.score,
		"crm_score_grade": result.grade,
		"crm_score_priority": result.priority,
		"crm_scored_on": now,
		"crm_score_breakdown": json.dumps(result.as_dict(), default=str),
	}


# ----------------------------------------------------------------------------------------------
# On save, on tracked activity, on rule change, daily


def score_on_save(doc):
	"""validate: set the score on the document being saved (no second save)."""
	rule = get_score_rule(doc.doctype)
	if not rule:
		return
	now = now_datetime()
	if doc.is_new():
		result = _score_new_document(rule, doc.__dict__, now)
	else:
		result = score_documents(rule, [doc.__dict__], now)[doc.name]
	before = doc.get_doc_before_save()
	old_grade = before.get("crm_score_grade") if before else None
	doc.update(score_values(result, now))
	band = result.band
	if band and band.set_field and band_field_allowed(rule, doc, band.set_field, band.set_value):
		doc.set(band.set_field, band.set_value)
	if old_grade != result.grade:
		doc.flags.crm_score_band_change = (old_grade, result)


def _score_new_document(rule, row, now):
	"""What score_documents gives a document being inserted, without its queries: nothing can
	reference a name that did not exist, so every activity count is zero and the document has been
	idle since its creation."""
	creation = get_datetime(row.get("creation")) if row.get("creation") else now
	days_idle = max((now - creation).total_seconds() / 86400, 0)
	shown = readable_view(row, rule.document_type, permissions.run_as_of(rule))
	return rule.score(shown, {activity.key: 0 for activity in rule.activities}, round(days_idle, 2))


def after_save(doc):
	"""on_update: what a band change sets off, once the document is saved."""
	change = doc.flags.pop("crm_score_band_change", None)
	if change:
		announce_band_change(doc, *change)


def rescore(doctype, name, announce=True):
	"""Recompute one document outside a save (a tracked activity): write only the score fields."""
	rule = get_score_rule(doctype)
	if not rule:
		return None
	doc = frappe.get_doc(doctype, name)
	now = now_datetime()
	result = score_documents(rule, [doc.__dict__], now)[name]
	old_grade = doc.get("crm_score_grade")
	values = score_values(result, now)
	band = result.band
	if band and band.set_field and band_field_allowed(rule, doc, band.set_field, band.set_value):
		# db_set skips the save's sanitising: the value is stored as a save would store it.
		values[band.set_field] = field_writes.as_a_save_stores(doc, band.set_field, band.set_value)
	doc.db_set(values, update_modified=False)
	if announce and old_grade != result.grade:
		announce_band_change(doc, old_grade, result)
	return result


def announce_band_change(doc, old_grade, result):
	if old_grade:
		doc.add_comment(
			"Info",
			_("Grade {0} → {1}: {2}").format(old_grade, result.grade or _("none"), result.explain()),
		)
	before = {**doc.__dict__, "crm_score_grade": old_grade}
	before_doc = frappe._dict(before)
	for rule in get_rules(doc.doctype, "score_band_changed"):
		if rule.condition_holds(doc.__dict__, before):
			run_rule(rule, doc, before_doc, "score_band_changed")


def recompute_all(rule_name, announce=False, now=None):
	"""Recompute every document of a rule's doctype in batches, with progress in the desk.

	Keyset pagination by name and one grouped query per activity criterion per batch keep both
	time and memory flat; only changed scores are written."""
	rule_doc = frappe.get_doc("Lead Score Rule", rule_name)
	rule = compile_score_rule_doc(rule_doc)
	doctype = rule.document_type
	fields = sorted({"name", "creation", "crm_score", "crm_score_grade", *rule.fields})
	total = frappe.db.count(doctype)
	now = get_datetime(now) if now else now_datetime()
	done, changed, last_name = 0, 0, ""
	while True:
		rows = frappe.get_all(
			doctype, filters={"name": (">", last_name)}, fields=fields, order_by="name asc", limit=BATCH_SIZE
		)
		if not rows:
			break
		last_name = rows[-1]["name"]
		results = score_documents(rule, rows, now)
		updates = {}
		for row in rows:
			result = results[row["name"]]
			if row.get("crm_score") != result.score or row.get("crm_score_grade") != result.grade:
				updates[row["name"]] = {
					"crm_score": result.score,
					"crm_score_grade": result.grade,
					"crm_score_priority": result.priority,
					"crm_scored_on": now,
					"crm_score_breakdown": json.dumps(result.as_dict(), default=str),
				}
				if announce and row.get("crm_score_grade") != result.grade:
					# One document whose band-change rules fail must not undo the batch's scores.
					run_alone(
						lambda row=row, result=result: announce_band_change(
							frappe.get_doc(doctype, row["name"]), row.get("crm_score_grade"), result
						),
						f"Band change of {doctype} {row['name']} could not be announced",
						doctype,
						row["name"],
						savepoint="crm_automation_band_change",
					)
		if updates:
			frappe.db.bulk_update(doctype, updates, chunk_size=500, update_modified=False)
			changed += len(updates)
		done += len(rows)
		# Commit per batch: a recompute of 100,000 documents must not be one long transaction, and
		# what is done stays done if the job is stopped.
		frappe.db.commit()
		frappe.publish_progress(done * 100 / max(total, 1), title=_("Recomputing scores"), doctype="Lead Score Rule", docname=rule_name)
	status = _("{0} of {1} {2} recomputed on {3}; {4} changed").format(done, total, doctype, now, changed)
	frappe.db.set_value("Lead Score Rule", rule_name, "recompute_status", status, update_modified=False)
	frappe.db.commit()
	return {"done": done, "changed": changed}


def enqueue_recompute(rule_name):
	frappe.enqueue(
		"crm_automation.scoring.recompute_all",
		queue="long",
		timeout=3600,
		job_id=f"crm_automation:recompute_scores:{rule_name}",
		deduplicate=True,
		enqueue_after_commit=True,
		rule_name=rule_name,
	)


RATE_LIMIT_KEY = "crm_automation:track_activity"


def _rate_limit_key(user, moment):
	"""One counter per caller per wall-clock minute; `now_datetime` is the only clock, so tests
	freeze it by patching `crm_automation.scoring.now_datetime`."""
	minute = int(get_datetime(moment).timestamp() // 60)
	return frappe.cache.make_key(f"{RATE_LIMIT_KEY}:{user}:{minute}")


def check_rate_limit():
	"""A flood from one API key (user) is refused past the per-minute limit in the settings."""
	limit = frappe.db.get_single_value("CRM Automation Settings", "track_activity_rate_limit") or 120
	key = _rate_limit_key(frappe.session.user, now_datetime())
	count = frappe.cache.incr(key)
	if count == 1:
		frappe.cache.expire(key, 120)
	if count > limit:
		frappe.throw(
			_("Too many activities from {0}: at most {1} a minute").format(frappe.bold(frappe.session.user), limit),
			frappe.RateLimitExceededError,
		)


def reset_rate_limit(user=None):
	"""Forget every counted minute of one caller (the session user by default): for tests, and for
	an administrator unblocking an integration at once."""
	user = user or frappe.session.user
	frappe.cache.delete_keys(f"{RATE_LIMIT_KEY}:{user}:")
