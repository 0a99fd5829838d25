"""One document's work inside a batch, undone alone when it fails.

Sweeps and recomputes commit per batch. Without a savepoint per document, one document that raises
rolls back the whole batch, and occurrences claimed in it are lost once they fall out of the
catch-up window. With one, the failing document's writes (its occurrence claim too) are undone, the
failure goes to the Error Log naming the document, the others commit, and the next sweep finds the
failed one unclaimed and tries it again.
"""

import frappe


class TransactionLost(Exception):
	"""The database rolled back the whole transaction (a deadlock): the batch's earlier work is gone
	too, so the caller stops here; the next sweep finds it all unclaimed."""


def run_alone(work, error_title, reference_doctype=None, reference_name=None, savepoint="crm_automation_one"):
	"""(True, what work() returned), or (False, None) once its writes are rolled back and logged.
	Each caller names its own savepoint: a nested one of the same name would replace the outer."""
	messages_before = len(frappe.local.message_log)
	after_commit_before = len(frappe.db.after_commit._functions)
	frappe.db.savepoint(savepoint)
	try:
		return True, work()
	except Exception:
		# A failure of automation is not the user's message to read (a sweep has no user anyway).
		del frappe.local.message_log[messages_before:]
		# What the undone work queued for after the commit (a webhook delivery, an SMS) is undone too.
		while len(frappe.db.after_commit._functions) > after_commit_before:
			frappe.db.after_commit._functions.pop()
		lost = not _rollback_to(savepoint)
		frappe.log_error(
			title=error_title, reference_doctype=reference_doctype, reference_name=reference_name
		)
		if lost:
			raise TransactionLost(error_title)
		return False, None


def _rollback_to(savepoint):
	try:
		frappe.db.rollback(save_point=savepoint)
		return True
	except Exception:
		# The savepoint is gone with the transaction (MariaDB rolls back all of it on a deadlock).
		frappe.db.rollback()
		return False


def fire_each(rule, items, fire, error_title, savepoint):
	"""A sweep's chunk: ``fire(rule, item)`` for each item (a document name, or a tuple starting with
	one) alone, then one commit. Returns how many ran the rule and logged it. A lost transaction stops
	the chunk: the next sweep finds its documents unclaimed."""
	fired = 0
	try:
		for item in items:
			name = item[0] if isinstance(item, tuple | list) else item
			done, log_name = run_alone(
				lambda item=item: fire(rule, item),
				error_title(name),
				rule.document_type,
				name,
				savepoint=savepoint,
			)
			fired += bool(done and log_name)
	except TransactionLost:
		pass
	# Commit the chunk: its claimed occurrences become visible to a rival worker or sweep, and a
	# crash loses at most this chunk, which the next sweep finds unclaimed and fires.
	frappe.db.commit()
	return fired
