"""Assign (as Frappe's assign_to.add does, without its extra reads) and Unassign (through assign_to),
with round robin and load balancing."""

import datetime

import frappe
import frappe.share
from frappe import _
from frappe.desk.form.assign_to import close_all_assignments, notify_assignment
from frappe.desk.form.document_follow import follow_document
from frappe.utils import format_date, format_datetime, get_fullname, now_datetime, nowdate

from crm_automation.actions.availability import availability_of
from crm_automation.actions.common import ActionError, default_minutes
from crm_automation.actions.recipients import (
	current_assignees,
	enabled_users,
	group_members,
	role_members,
	users_with_role,
)
from crm_automation.engine import availability as av
from crm_automation.engine import workflow as wf
from crm_automation.engine.i18n import translating
from crm_automation.trust import run_as as permissions


def assign(intent, doc, before, rule):
	if intent["only_if_unassigned"] and current_assignees(doc):
		return {"status": "Skipped", "result": _("Already assigned")}
	roster = _roster(intent, doc)
	plan = _plan(intent, enabled_users(roster))
	candidates = plan.choices
	if not candidates:
		if plan.skipped:
			raise ActionError(
				_("Nobody is available to assign to; skipped: {0}").format(describe_skipped(plan.skipped))
			)
		raise ActionError(_("No enabled user to assign to ({0})").format(intent["assign_to_type"]))
	strategy = intent["strategy"]
	if plan.fallback == av.FALLBACK_USER:
		chosen = candidates
	elif plan.fallback == av.FALLBACK_ROLE or strategy == wf.LOAD_BALANCING:
		# The fallback role's members take the work by load, not by a turn kept for another roster.
		chosen = [_least_loaded(candidates, doc.doctype)]
	elif intent["assign_to_type"] == wf.ASSIGN_TO_FIELD or strategy == wf.ASSIGN_EVERYONE:
		chosen = candidates
	else:
		chosen = [
			_next_in_turn(
				intent["row_id"],
				candidates,
				intent.get("row_doctype") or "Workflow Rule Action",
				roster=roster,
				by_name=intent["assign_to_type"] == wf.ASSIGN_TO_ROLE,
			)
		]
	# Frappe shares the document with an assignee who cannot read it: asked once per user.
	unreadable = {
		user
		for user in chosen
		if not frappe.has_permission(doc.doctype, "read", doc=doc, user=user, throw=False)
	}
	run_as = permissions.run_as_of(rule)
	_check_can_share_with(doc, unreadable, run_as)
	already = _with_open_todo(doc, chosen)
	newly = [user for user in chosen if user not in already]
	if not newly:
		return {
			"status": "Skipped",
			"result": _with_availability(_("Already assigned to {0}").format(", ".join(chosen)), plan),
		}
	description = _("Assigned by automation rule {0}").format(rule.name)
	todos = [
		add_assignment(doc, user, description, share=user in unreadable, assigned_by=run_as) for user in newly
	]
	shared = [user for user in newly if user in unreadable]
	if shared:
		frappe.msgprint(
			_("Shared with the following Users with Read access:{0}").format("<br><br>" + "<br>".join(shared))
		)
	return {
		"result": _with_availability(_("Assigned to {0}").format(", ".join(newly)), plan),
		"created_doctype": "ToDo",
		"created_name": todos[0],
		"minutes_saved": default_minutes(wf.ASSIGN),
	}


def _plan(intent, candidates):
	"""Who of the enabled ``candidates`` is in, or the fallback (engine/availability.py). An action
	that asks for none of it keeps every candidate, with nothing read."""
	skip_away, skip_off_hours = intent.get("skip_away"), intent.get("skip_off_hours")
	fallback_user, fallback_role = intent.get("fallback_user"), intent.get("fallback_role")
	if not (skip_away or skip_off_hours or fallback_user or fallback_role):
		return av.Plan(candidates, [])
	fallback_user = next(iter(enabled_users([fallback_user])), None) if fallback_user else None
	role_members = users_with_role(fallback_role) if fallback_role and not fallback_user else []
	moment = now_datetime()
	availability = availability_of(candidates + role_members, moment, with_hours=skip_off_hours)
	return av.plan_assignment(
		candidates,
		availability,
		moment,
		skip_away=skip_away,
		skip_off_hours=skip_off_hours,
		fallback_user=fallback_user,
		fallback_role_members=role_members,
	)


def describe_skipped(skipped):
	"""'Ann Lee (away until 12-12-2026 09:00), Bob (outside working hours, back …)', in the reader's
	language; a holiday's end in the site's date format."""
	with translating(_):
		return ", ".join(entry.describe(get_fullname(entry.user), _format_moment) for entry in skipped)


def _format_moment(value):
	if isinstance(value, datetime.datetime):
		return format_datetime(value, "dd-MM-yyyy HH:mm")
	return format_date(value)


def _with_availability(result, plan):
	"""The log's result, with who was skipped and whether the fallback was used."""
	parts = [result]
	if plan.skipped:
		parts.append(_("skipped: {0}").format(describe_skipped(plan.skipped)))
	if plan.fallback == av.FALLBACK_USER:
		parts.append(_("fallback user used: nobody else was available"))
	elif plan.fallback == av.FALLBACK_ROLE:
		parts.append(_("fallback role used: nobody else was available"))
	return "; ".join(parts)


def _with_open_todo(doc, users):
	todo = frappe.qb.DocType("ToDo")
	rows = (
		frappe.qb.from_(todo)
		.select(todo.allocated_to)
		.where(
			(todo.reference_type == doc.doctype)
			& (todo.reference_name == str(doc.name))
			& (todo.status == "Open")
			& todo.allocated_to.isin(users)
		)
	).run()
	return {user for (user,) in rows}


def add_assignment(doc, user, description, share, assigned_by=None):
	"""What frappe.desk.form.assign_to.add does for one user, with the document at hand: the ToDo
	(whose controller adds the "assigned" comment and updates ``_assign``), ``assigned_to`` where the
	doctype has it, a share when the assignee cannot read the document, following the document
	when the user asked for that, and the Assignment notification. assign_to.add also loads the
	document again and lists every assignment for its caller: the profile of a rule's run showed
	those, not the work, as what the action cost on top of Frappe's Assignment Rule. ``share``: the
	user cannot read the document (the caller has asked). ``assigned_by``: who gives the ToDo and
	the Assignment alert (a rule's run-as user), else the session user."""
	todo = frappe.get_doc(
		{
			"doctype": "ToDo",
			"allocated_to": user,
			"reference_type": doc.doctype,
			"reference_name": str(doc.name),
			"description": description,
			"priority": "Medium",
			"status": "Open",
			"date": nowdate(),
			"assigned_by": assigned_by or frappe.session.user,
		}
	).insert(ignore_permissions=True)
	if doc.meta.get_field("assigned_to"):
		frappe.db.set_value(doc.doctype, doc.name, "assigned_to", user)
	if share:
		frappe.share.add(doc.doctype, doc.name, user)
	if frappe.get_cached_value("User", user, "follow_assigned_documents"):
		follow_document(doc.doctype, doc.name, user)
	# Frappe's alert names the session user as its sender: the one who gives the ToDo, here.
	with permissions.acting_as(todo.assigned_by):
		notify_assignment(
			todo.assigned_by, user, doc.doctype, todo.reference_name, action="ASSIGN", description=description
		)
	return todo.name


def _check_can_share_with(doc, unreadable, run_as):
	"""Assignees who cannot read the document are given a share, which is the run-as user's right to
	give: without it, or with document sharing disabled, the assignment is refused."""
	if not unreadable:
		return
	if frappe.get_system_settings("disable_document_sharing"):
		raise ActionError(
			_(
				"{0} may not read this document and document sharing is disabled: give them the required permissions before assigning"
			).format(frappe.bold(", ".join(sorted(unreadable))))
		)
	permissions.check_right(doc, "share", run_as)


def assignment_candidates(intent, doc):
	"""The enabled users an Assign action may choose from now, in its turn order (see _roster): those
	who are in, or the fallback, when the action skips users who are away or off hours."""
	return _plan(intent, enabled_users(_roster(intent, doc))).choices


def _roster(intent, doc):
	"""Everyone the action names, disabled users too, in the order turns are taken: the listed
	order for Listed Users, the group's own order for a User Group, alphabetical for a Role."""
	target = intent["assign_to_type"]
	if target == wf.ASSIGN_TO_USERS:
		return [user for user in dict.fromkeys(intent["users"]) if user]
	if target == wf.ASSIGN_TO_ROLE:
		return role_members(intent["role"])
	if target == wf.ASSIGN_TO_GROUP:
		return group_members(intent["user_group"])
	return [doc.get(intent["user_field"])]


def _next_in_turn(row_id, candidates, row_doctype="Workflow Rule Action", roster=None, by_name=False):
	"""Round robin: the candidate after the last one assigned, in the roster's order, wrapping
	around. The roster (everyone named, disabled users too) keeps the turn moving past a user who
	has since been disabled. A last user no longer on the roster at all is placed by name when the
	roster is alphabetical (a Role); otherwise the turn starts again from the first.

	Fair when two processes save at once: the action row is locked (SELECT ... FOR UPDATE, which
	reads the latest committed turn) until the saving transaction ends, so turns are taken one at
	a time."""
	last = frappe.db.sql(
		f"select last_assigned_user from `tab{row_doctype}` where name = %s for update", row_id
	)
	last = last[0][0] if last else None
	chosen = _following(last, candidates, roster or candidates, by_name)
	row = frappe.qb.DocType(row_doctype)  # an action row: no document cache to clear, unlike set_value
	frappe.qb.update(row).set(row.last_assigned_user, chosen).where(row.name == row_id).run()
	return chosen


def _following(last, candidates, roster, by_name=False):
	return av.next_in_turn(last, candidates, roster, by_name)


def _least_loaded(candidates, doctype):
	todo = frappe.qb.DocType("ToDo")
	rows = (
		frappe.qb.from_(todo)
		.select(todo.allocated_to, frappe.query_builder.functions.Count("*"))
		.where(
			(todo.status == "Open") & (todo.reference_type == doctype) & todo.allocated_to.isin(candidates)
		)
		.groupby(todo.allocated_to)
	).run()
	return av.least_loaded(candidates, dict(rows))


def unassign(intent, doc, before, rule):
	closed = current_assignees(doc)
	close_all_assignments(doc.doctype, doc.name, ignore_permissions=True)
	return {
		"result": _("Closed assignments of {0}").format(", ".join(closed))
		if closed
		else _("Nothing to close"),
		"minutes_saved": default_minutes(wf.UNASSIGN) if closed else 0,
	}
