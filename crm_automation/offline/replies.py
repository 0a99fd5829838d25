"""Replies in the offline simulator: incoming e-mails as timed events of a record.

A record may carry ``"replies"``: the e-mails that come back to it, each after a span from the
simulation's start, as a span alone or with the e-mail's values::

    {"name": "LEAD-1", "status": "Open", "replies": ["30h", {"after": "4d", "subject": "Re: price"}]}

Communication Received rules are decided on the record as it is, with the first reply's values as
``communication.*`` (the first that fires, when several come); a record without replies cannot
fire them. With ``--until`` the replies are also timed events of the follow-up steps: a reply ends
a sequence that stops on a reply, or an Until Reply wait (engine/sequence_story.py). No Frappe here.
"""

from crm_automation.engine.replies import COMMUNICATION_FIELDS, budgeted_content, condition_values
from crm_automation.engine.sequence_story import parse_span

REPLY_KEYS = frozenset({"after", *COMMUNICATION_FIELDS})


def read_replies(where, value, report):
	"""A record's ``replies`` as ``[{"after": "30h", "subject": ..., ...}]``, or None (reported)."""
	if not isinstance(value, list):
		report(where, "must be a list of replies (a span such as 30h, or {after, subject, sender, content})")
		return None
	replies, ok = [], True
	for i, item in enumerate(value):
		path = f"{where}[{i}]"
		reply = {"after": item} if isinstance(item, str) else item
		if not isinstance(reply, dict):
			report(path, "must be a span such as 30h or an object with after")
			ok = False
			continue
		unknown = sorted(str(key)[:40] for key in set(reply) - REPLY_KEYS)
		if unknown:
			report(
				path, f"unknown key(s) {', '.join(unknown)} (use after, {', '.join(COMMUNICATION_FIELDS)})"
			)
			ok = False
			continue
		try:
			parse_span(reply.get("after"))
		except ValueError as error:
			report(f"{path}.after", str(error))
			ok = False
			continue
		shown = {key: value for key, value in reply.items() if key != "after"}
		shown["content"] = budgeted_content(str(shown.get("content") or ""))
		shown.setdefault("sent_or_received", "Received")
		replies.append({"after": reply["after"], **shown})
	return replies if ok else None


def reply_evaluation(rule, values, replies, explain):
	"""(Evaluation or None, what to say) of a Communication Received rule on a record's replies."""
	if not replies:
		return None, {"reason": "Communication Received needs the record's replies (a replies list)"}
	evaluation, first = None, None
	for number, reply in enumerate(replies, 1):
		evaluation = rule.evaluate({**values, **condition_values(reply)}, None, explain=explain)
		first = first or (evaluation, number, reply)
		if evaluation.fired:
			return evaluation, _note(number, reply, len(replies))
	evaluation, number, reply = first
	return evaluation, _note(number, reply, len(replies))


def _note(number, reply, count):
	return {"note": f"on reply {number} of {count} (after {reply['after']})"}
