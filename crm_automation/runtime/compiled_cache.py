"""Compiled rules, kept per process and per site, rebuilt when any process changes a rule.

Compiled closures cannot go to redis, so each process keeps its own index, and a version token per
index says when it is stale. The tokens are rows of Frappe's global defaults (tabDefaultValue,
parent ``__global``), which every request loads anyway: Frappe dispatches a doc_events handler
through ``frappe.get_attr``, which reads the installed apps from those very defaults. So a save
reads its tokens from this request's copy of the defaults, without a round trip of its own, and a
doctype without work costs a dict lookup per handler.

A clear writes a new token in the caller's transaction. That transaction sees it at once (kept in
the request until it ends); other processes once it is committed: after the commit the token is put
into the cached defaults, so no other process reads an uncommitted token.

An index is labelled with the token read from the database in the same transaction, before the
rules are loaded, not with the token the request saw: a process whose transaction snapshot
predates the latest change builds an index without that change, labels it with the older token
and builds again on its next request. If the cached defaults and the database disagree (another
process loaded the defaults in a snapshot older than the latest commit), the cached copy is
dropped so that the next request loads it again. Callers that know a rule exists (the time and
escalation sweeps) still call forget_local_indexes() and rebuild once when the rule is missing.
"""

import frappe

_caches = []

TOKEN_PARENT = "__global"
# This request's view of the tokens (the defaults it loaded, with its own uncommitted clears on top):
# frappe.local.cache starts empty with every request.
_REQUEST_VERSIONS = "crm_automation:index_versions:request"
_PENDING_VERSIONS = "crm_automation:index_versions:pending"


def request_versions():
	"""{version key: token} of every index, as this request first read them."""
	local = frappe.local.cache
	versions = local.get(_REQUEST_VERSIONS)
	if versions is None:
		defaults = frappe.defaults.get_defaults_for(TOKEN_PARENT)
		versions = {cache.version_key: _token(defaults.get(cache.version_key)) for cache in _caches}
		versions.update(local.get(_PENDING_VERSIONS) or {})
		local[_REQUEST_VERSIONS] = versions
	return versions


def _token(value):
	"""A stored token as one string: Frappe's defaults turn a key stored twice (two first clears at
	the same time) into a list."""
	if isinstance(value, list | tuple):
		return "|".join(str(item) for item in value)
	return value or ""


def _token_in_database(version_key):
	values = frappe.db.sql_list(
		"select defvalue from `tabDefaultValue` where parent=%s and defkey=%s order by creation",
		(TOKEN_PARENT, version_key),
	)
	return _token(list(dict.fromkeys(values)) if len(values) > 1 else (values[0] if values else None))


def _store_token(version_key, token):
	"""In the caller's transaction, without Frappe's cache clearing: frappe.db.set_global clears the
	whole site cache, and frappe.db.set_value queues a document cache drop for the commit."""
	table = frappe.qb.DocType("DefaultValue")
	where = (table.parent == TOKEN_PARENT) & (table.defkey == version_key)
	if frappe.qb.from_(table).select(table.name).where(where).run():
		frappe.qb.update(table).set(table.defvalue, token).where(where).run()
		return
	row = frappe.new_doc("DefaultValue")
	row.update(
		{
			"parent": TOKEN_PARENT,
			"parenttype": "__default",
			"parentfield": "system_defaults",
			"defkey": version_key,
			"defvalue": token,
		}
	)
	row.db_insert()


def _publish_tokens():
	"""After the commit: the cached defaults every process reads carry this transaction's tokens. Read
	from and written to redis only: a query here would start the next transaction's snapshot now."""
	local = frappe.local.cache
	pending = local.pop(_PENDING_VERSIONS, None) or {}
	local.pop(_REQUEST_VERSIONS, None)
	forget_request_memos()
	local.get(frappe.cache.make_key("defaults"), {}).pop(TOKEN_PARENT, None)  # read redis, not this copy
	cached = frappe.cache.hget("defaults", TOKEN_PARENT)
	if cached is not None:  # otherwise the next request loads them from the database
		frappe.cache.hset("defaults", TOKEN_PARENT, frappe._dict({**cached, **pending}))


def _forget_pending_tokens():
	"""After a rollback: the tokens this transaction wrote never were; no other process saw them."""
	frappe.local.cache.pop(_PENDING_VERSIONS, None)
	frappe.local.cache.pop(_REQUEST_VERSIONS, None)
	forget_request_memos()


class CompiledCache:
	def __init__(self, version_key, build):
		self.version_key = version_key
		self.build = build
		self._by_site = {}
		_caches.append(self)

	def get(self):
		versions = request_versions()
		if self.version_key not in versions:  # this index's module was imported after the request began
			frappe.local.cache.pop(_REQUEST_VERSIONS, None)
			versions = request_versions()
		version = versions.get(self.version_key, "")
		site = frappe.local.site
		cached = self._by_site.get(site)
		if cached and cached[0] == version:
			return cached[1]
		label = self.pending() or _token_in_database(self.version_key)
		index = self.build()
		self._by_site[site] = (label, index)
		if label != version:
			frappe.cache.hdel("defaults", TOKEN_PARENT)
			frappe.local.cache.pop(_REQUEST_VERSIONS, None)
		return index

	def pending(self):
		return (frappe.local.cache.get(_PENDING_VERSIONS) or {}).get(self.version_key)

	def clear(self):
		token = frappe.generate_hash(length=12)
		_store_token(self.version_key, token)
		local = frappe.local.cache
		local.setdefault(_PENDING_VERSIONS, {})[self.version_key] = token
		local.pop(_REQUEST_VERSIONS, None)
		forget_request_memos()
		self._by_site.pop(frappe.local.site, None)
		frappe.db.after_commit.add(_publish_tokens)
		frappe.db.after_rollback.add(_forget_pending_tokens)

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
	"""``build()``, once per process for as long as no index changes; within a request a dict lookup
	after the first. What it returns must follow from the indexes, or only grow stale in a safe
	direction until the next index change (sequences.sequence_doctypes)."""

	def per_process():
		site = frappe.local.site
		for cache in _caches:
			try:
				cache.get()  # current for this request: the key below names what build() reads
			except Exception:
				pass  # tables missing (install, migrate): build() meets the same and says so
		key = (site, name, tuple((cache._by_site.get(site) or (None,))[0] for cache in _caches))
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
