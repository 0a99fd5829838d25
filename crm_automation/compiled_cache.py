"""Compiled rules, kept per process and per site, rebuilt when any process changes a rule.

Compiled closures cannot go to redis, so each process keeps its own index; a version token in redis
says when it is stale. Every index's token lives in one redis hash, read once per request (one round
trip, whatever the number of indexes), so a save pays one lookup per request and a dict access per
index after that. Dropping the token now, after commit and after rollback means no process keeps an
index built from a state that did not last.

One gap remains: an index is built in the caller's transaction, and under REPEATABLE READ that
transaction's snapshot can be older than the commit that last dropped the token (its first read came
before that commit, its first lookup after). Such an index lacks the newest change yet carries the
current token. Callers that know a rule exists (the time and escalation sweeps) call
forget_local_indexes() and rebuild once when the rule is missing.
"""

import frappe

_caches = []

VERSIONS_KEY = "crm_automation:index_versions"
# Where this request keeps the hash once read: frappe.local.cache starts empty with every request.
_REQUEST_VERSIONS = "crm_automation:index_versions:request"


def request_versions():
	"""{version key: token} of every index, as this request first read them."""
	local = frappe.local.cache
	versions = local.get(_REQUEST_VERSIONS)
	if versions is None:
		stored = frappe.cache.hgetall(VERSIONS_KEY)
		versions = local[_REQUEST_VERSIONS] = {
			(key.decode() if isinstance(key, bytes) else key): token for key, token in stored.items()
		}
	return versions


class CompiledCache:
	def __init__(self, version_key, build):
		self.version_key = version_key
		self.build = build
		self._by_site = {}
		_caches.append(self)

	def get(self):
		versions = request_versions()
		version = versions.get(self.version_key) or self.new_token(versions)
		site = frappe.local.site
		cached = self._by_site.get(site)
		if cached and cached[0] == version:
			return cached[1]
		index = self.build()
		self._by_site[site] = (version, index)
		return index

	def new_token(self, versions):
		version = versions[self.version_key] = frappe.generate_hash(length=12)
		frappe.cache.hset(VERSIONS_KEY, self.version_key, version)
		return version

	def clear(self):
		self._drop_token()
		self._by_site.pop(frappe.local.site, None)
		frappe.db.after_commit.add(self._drop_token)
		frappe.db.after_rollback.add(self._drop_token)

	def _drop_token(self):
		forget_request_memos()
		frappe.local.cache.get(_REQUEST_VERSIONS, {}).pop(self.version_key, None)
		frappe.cache.hdel(VERSIONS_KEY, self.version_key)

	def forget(self):
		"""Drop this process's copy only; the next lookup rebuilds it from what this transaction sees."""
		forget_request_memos()
		_process_memos.clear()
		self._by_site.pop(frappe.local.site, None)


def forget_local_indexes():
	"""An index is built in the caller's transaction, whose snapshot can be older than the commit
	that last dropped the token (a long-lived worker), so it can lack a rule that exists. A caller
	that knows a rule exists but does not find it rebuilds once with this."""
	for cache in _caches:
		cache.forget()


_MEMO_KEY = "crm_automation:request_memos"
_process_memos = {}


def request_memo(name, build):
	"""``build()``, once per request: kept in frappe.local.cache, which every request starts empty,
	and dropped whenever any compiled index is cleared or forgotten here."""
	memos = frappe.local.cache.get(_MEMO_KEY)
	if memos is None:
		memos = frappe.local.cache[_MEMO_KEY] = {}
	if name not in memos:
		memos[name] = build()
	return memos[name]


def versioned_memo(name, build):
	"""``build()``, once per process for as long as no index's token changes (what it returns must
	follow from the indexes alone); within a request a dict lookup after the first."""

	def per_process():
		versions = request_versions()
		for cache in _caches:
			# A token is missing right after a clear: without one the key would also match what was
			# worked out after an earlier clear.
			if cache.version_key not in versions:
				cache.new_token(versions)
		key = (frappe.local.site, name, frozenset(versions.items()))
		if key not in _process_memos:
			if len(_process_memos) > 64:
				_process_memos.clear()
			_process_memos[key] = build()
		return _process_memos[key]

	return request_memo(name, per_process)


def forget_request_memos():
	frappe.local.cache.pop(_MEMO_KEY, None)


def forget_memos():
	"""Drop every memo of this process (a benchmark that swaps indexes in place)."""
	forget_request_memos()
	_process_memos.clear()
