"""Compiled rules, kept per process and per site, rebuilt when any process changes a rule.

Compiled closures cannot go to redis, so each process keeps its own index; a version token in redis
says when it is stale. Within a request the token comes from frappe.local's cache, so a lookup costs
a dict access. Dropping the token now, after commit and after rollback means no process keeps an
index built from a state that did not last.

One gap remains: an index is built in the caller's transaction, and under REPEATABLE READ that
transaction's snapshot can be older than the commit that last dropped the token (its first read came
before that commit, its first lookup after). Such an index lacks the newest change yet carries the
current token. Callers that know a rule exists (the time and escalation sweeps) call
forget_local_indexes() and rebuild once when the rule is missing.
"""

import frappe

_caches = []


class CompiledCache:
	def __init__(self, version_key, build):
		self.version_key = version_key
		self.build = build
		self._by_site = {}
		self._keys = {}
		_caches.append(self)

	def get(self):
		# The token as this request already read it, without building the redis key again: this
		# runs on every save of every doctype.
		site = frappe.local.site
		key = self._keys.get(site)
		if key is None:
			key = self._keys[site] = frappe.cache.make_key(self.version_key)
		version = frappe.local.cache.get(key)
		if version is None:
			version = frappe.cache.get_value(self.version_key)
		if version is None:
			version = frappe.generate_hash(length=12)
			frappe.cache.set_value(self.version_key, version)
		cached = self._by_site.get(site)
		if cached and cached[0] == version:
			return cached[1]
		index = self.build()
		self._by_site[site] = (version, index)
		return index

	def clear(self):
		forget_request_memos()
		frappe.cache.delete_value(self.version_key)
		self._by_site.pop(frappe.local.site, None)
		frappe.db.after_commit.add(self._drop_token)
		frappe.db.after_rollback.add(self._drop_token)

	def _drop_token(self):
		frappe.cache.delete_value(self.version_key)

	def forget(self):
		"""Drop this process's copy only; the next lookup rebuilds it from what this transaction sees."""
		forget_request_memos()
		self._by_site.pop(frappe.local.site, None)


def forget_local_indexes():
	"""An index is built in the caller's transaction, whose snapshot can be older than the commit
	that last dropped the token (a long-lived worker), so it can lack a rule that exists. A caller
	that knows a rule exists but does not find it rebuilds once with this."""
	for cache in _caches:
		cache.forget()


_MEMO_KEY = "crm_automation:request_memos"


def request_memo(name, build):
	"""``build()``, once per request: kept in frappe.local.cache, which every request starts empty,
	and dropped whenever any compiled index is cleared or forgotten here."""
	memos = frappe.local.cache.get(_MEMO_KEY)
	if memos is None:
		memos = frappe.local.cache[_MEMO_KEY] = {}
	if name not in memos:
		memos[name] = build()
	return memos[name]


def forget_request_memos():
	frappe.local.cache.pop(_MEMO_KEY, None)
