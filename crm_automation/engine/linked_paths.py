"""Conditions that look past the document: fields of linked documents and child-table aggregates.

Two leaf forms, both ordinary condition leaves in a condition tree:

* a **linked path** ``{"field": "customer.territory", "op": "=", "value": "North"}``: up to two Link
  hops and a field of the last linked document (``customer.territory.parent_territory``). A Dynamic
  Link names the document type it follows in brackets: ``party_name[Customer].customer_group``
  (it reads nothing when the document's link points at another type).
* an **aggregate** over a child table ``{"field": "items.qty", "agg": "any", "op": ">", "value": 100}``:
  ``any`` / ``all`` test each row's field, ``sum`` adds a numeric field of the rows and ``count``
  counts the rows (``{"field": "items", "agg": "count", "op": ">=", "value": 3}``).

The engine reads linked values from the values dict under the path itself (``values["customer.
territory"]``): whoever evaluates fills them in first with ``fetch_linked_values``, one load per
linked document however many leaves read it. Operators that compare with the document before the
save (changed, changed from/to) do not apply: the linked document's earlier state is not known.
"""

import re

from .fieldtypes import UNSUPPORTED, describe_value, is_numeric, kind_of
from .i18n import _
from .operators import get_operator

MAX_LINK_HOPS = 2
AGGREGATES = ("any", "all", "count", "sum")
# A child-table test's label in a trace: "any of Items: Qty".
_AGGREGATE_LABELS = {
	"any": lambda: _("any of {0}"),
	"all": lambda: _("all of {0}"),
	"count": lambda: _("number of {0}"),
	"sum": lambda: _("sum of {0}"),
}
LINK_TYPES = ("Link", "Dynamic Link")
TABLE_TYPES = ("Table",)
_SEGMENT_RE = re.compile(r"^([A-Za-z0-9_]+)(?:\[([^\[\]]+)\])?$")


class LinkedPathError(ValueError):
	"""A linked path or aggregate that cannot be followed; the message names the part at fault."""


class Hop:
	"""One step along a link: read ``fieldname`` and open that document of ``doctype``. For a
	Dynamic Link, ``type_field`` holds the document type, which must equal ``doctype``."""

	__slots__ = ("doctype", "fieldname", "type_field")

	def __init__(self, fieldname, doctype, type_field=None):
		self.fieldname = fieldname
		self.doctype = doctype
		self.type_field = type_field

	def as_dict(self):
		return {"fieldname": self.fieldname, "doctype": self.doctype, "type_field": self.type_field}


class LinkedPath:
	"""A resolved linked path: the hops, then ``fieldname`` of the last linked document."""

	__slots__ = ("field", "fieldname", "hops", "label", "path")

	def __init__(self, path, hops, fieldname, field, label):
		self.path = path
		self.hops = tuple(hops)
		self.fieldname = fieldname
		self.field = field
		self.label = label

	@property
	def own_field(self):
		return self.hops[0].fieldname

	def as_dict(self):
		return {
			"path": self.path,
			"hops": [hop.as_dict() for hop in self.hops],
			"fieldname": self.fieldname,
			"label": self.label,
		}


def is_linked_path(fieldname):
	return isinstance(fieldname, str) and ("." in fieldname or "[" in fieldname)


def _split(path):
	segments = path.split(".")
	parsed = []
	for segment in segments:
		match = _SEGMENT_RE.match(segment.strip())
		if not match:
			raise LinkedPathError(
				_("{0} is not a field path (use link_field.field, e.g. customer.territory)").format(
					describe_value(path)
				)
			)
		parsed.append((match.group(1), match.group(2)))
	return parsed


def _label(field, fieldname):
	return (field or {}).get("label") or fieldname


def follow_link(fieldname, declared_type, fields, get_fields, path):
	"""The Hop for one Link or Dynamic Link field of ``fields`` and the linked doctype's fields."""
	field = fields.get(fieldname)
	if field is None:
		raise LinkedPathError(
			_("{0}: {1} is not a field").format(describe_value(path), describe_value(fieldname))
		)
	fieldtype = field.get("fieldtype")
	if fieldtype not in LINK_TYPES:
		raise LinkedPathError(
			_("{0}: {1} ({2}) is not a Link field, so no document can be followed").format(
				describe_value(path), fieldname, fieldtype
			)
		)
	if fieldtype == "Link":
		doctype = field.get("options")
		if declared_type and declared_type != doctype:
			raise LinkedPathError(
				_("{0}: {1} links to {2}, not {3}").format(
					describe_value(path), fieldname, doctype, declared_type
				)
			)
		hop = Hop(fieldname, doctype)
	else:
		if not declared_type:
			raise LinkedPathError(
				_("{0}: {1} is a Dynamic Link; name the document type it follows, e.g. {2}[Customer]").format(
					describe_value(path), fieldname, fieldname
				)
			)
		hop = Hop(fieldname, declared_type, field.get("options"))
	if get_fields is None:
		raise LinkedPathError(
			_("{0}: fields of linked documents cannot be used here").format(describe_value(path))
		)
	linked_fields = get_fields(hop.doctype)
	if linked_fields is None:
		raise LinkedPathError(
			_("{0}: {1} is not a document type").format(describe_value(path), describe_value(hop.doctype))
		)
	return hop, linked_fields


def resolve_linked_path(path, fields, get_fields):
	"""Resolve ``customer.territory`` (or two hops) against the document's ``fields``; raises
	LinkedPathError naming the path and the part that fails."""
	segments = _split(path)
	if len(segments) < 2:
		raise LinkedPathError(
			_("{0}: a linked path needs a link field and a field (customer.territory)").format(
				describe_value(path)
			)
		)
	if len(segments) - 1 > MAX_LINK_HOPS:
		raise LinkedPathError(
			_("{0}: at most {1} links can be followed").format(describe_value(path), MAX_LINK_HOPS)
		)
	hops, labels, current = [], [], fields
	for fieldname, declared_type in segments[:-1]:
		hop, linked_fields = follow_link(fieldname, declared_type, current, get_fields, path)
		labels.append(_label(current.get(fieldname), fieldname))
		hops.append(hop)
		current = linked_fields
	fieldname, declared = segments[-1]
	if declared:
		raise LinkedPathError(
			_("{0}: {1}[{2}] is not followed; end on a field").format(
				describe_value(path), fieldname, declared
			)
		)
	field = current.get(fieldname) or _STANDARD_LINKED.get(fieldname)
	if field is None:
		raise LinkedPathError(
			_("{0}: {1} has no field {2}").format(
				describe_value(path), hops[-1].doctype, describe_value(fieldname)
			)
		)
	if kind_of(field.get("fieldtype")) == UNSUPPORTED:
		raise LinkedPathError(
			_("{0}: {1} ({2}) cannot be used in a condition").format(
				describe_value(path), fieldname, field.get("fieldtype")
			)
		)
	label = " › ".join([*labels, _label(field, fieldname)])
	descriptor = {"fieldtype": field["fieldtype"], "options": field.get("options"), "label": label}
	return LinkedPath(path, hops, fieldname, descriptor, label)


# A linked document's name and owner are there whatever its DocType lists.
_STANDARD_LINKED = {
	"name": {"fieldtype": "Data", "label": "ID"},
	"owner": {"fieldtype": "Link", "options": "User", "label": "Created By"},
}


def resolve_table_field(fieldname, agg, fields, get_fields):
	"""For an aggregate: (table fieldname, row fieldname or None, row field, row fields, label)."""
	if agg not in AGGREGATES:
		raise LinkedPathError(
			_("unknown aggregate {0} (use one of: {1})").format(describe_value(agg), ", ".join(AGGREGATES))
		)
	parts = fieldname.split(".") if isinstance(fieldname, str) else []
	if not parts or len(parts) > 2 or not all(_SEGMENT_RE.match(p) and "[" not in p for p in parts):
		raise LinkedPathError(
			_("{0} is not a child table field path (use items.qty)").format(describe_value(fieldname))
		)
	table = fields.get(parts[0])
	if table is None or table.get("fieldtype") not in TABLE_TYPES:
		raise LinkedPathError(
			_("{0}: {1} is not a child table of the document").format(
				describe_value(fieldname), describe_value(parts[0])
			)
		)
	table_label = _label(table, parts[0])
	if len(parts) == 1:
		if agg != "count":
			raise LinkedPathError(
				_("{0}: {1} needs a field of the rows, e.g. {2}.qty").format(
					describe_value(fieldname), agg, parts[0]
				)
			)
		return parts[0], None, None, None, table_label
	if get_fields is None:
		raise LinkedPathError(
			_("{0}: child table fields cannot be used here").format(describe_value(fieldname))
		)
	row_fields = get_fields(table.get("options"))
	if row_fields is None:
		raise LinkedPathError(
			_("{0}: {1} is not a document type").format(
				describe_value(fieldname), describe_value(table.get("options"))
			)
		)
	row_field = row_fields.get(parts[1])
	if row_field is None:
		raise LinkedPathError(
			_("{0}: {1} has no field {2}").format(
				describe_value(fieldname), table.get("options"), describe_value(parts[1])
			)
		)
	if agg == "count":
		raise LinkedPathError(
			_("{0}: count counts rows; use the table alone ({1})").format(describe_value(fieldname), parts[0])
		)
	kind = kind_of(row_field.get("fieldtype"))
	if kind == UNSUPPORTED:
		raise LinkedPathError(
			_("{0}: {1} ({2}) cannot be used in a condition").format(
				describe_value(fieldname), parts[1], row_field.get("fieldtype")
			)
		)
	if agg == "sum" and not is_numeric(kind):
		raise LinkedPathError(
			_("{0}: sum needs a number field, {1} is {2}").format(
				describe_value(fieldname), parts[1], row_field.get("fieldtype")
			)
		)
	return parts[0], parts[1], row_field, row_fields, f"{table_label} › {_label(row_field, parts[1])}"


class AggregateLeaf:
	"""A condition on the rows of a child table; ``inner`` is an ordinary leaf compiled either
	against the row's fields (any/all) or against the one computed value (count/sum)."""

	__slots__ = ("agg", "fieldname", "inner", "label", "op", "path", "row_field", "table", "test")

	VALUE_KEY = "__aggregate__"

	def value_of(self, doc):
		rows = (doc.get(self.table) if doc is not None else None) or []
		if self.agg == "count":
			return len(rows)
		if self.agg == "sum":
			coerce = self.inner.coerce
			return sum(coerce(_row_get(row, self.row_field)) for row in rows)
		return [self.inner.coerce(_row_get(row, self.row_field)) for row in rows]

	def explain(self, doc, before):
		actual = self.value_of(doc)
		_ok, inner_trace = self.inner.explain(
			{self.VALUE_KEY: actual if self.agg in ("count", "sum") else None}, None
		)
		entry = {
			"path": self.path,
			"field": self.fieldname,
			"label": self.label,
			"op": self.op,
			"agg": self.agg,
			"expected": inner_trace[0]["expected"],
			"actual": actual,
			"result": bool(self.test(doc, before)),
		}
		return entry["result"], [entry]


def _row_get(row, fieldname):
	getter = getattr(row, "get", None)
	return getter(fieldname) if getter else None


def aggregate_test(leaf):
	agg, table, inner = leaf.agg, leaf.table, leaf.inner.test
	key = AggregateLeaf.VALUE_KEY

	if agg == "any":

		def any_row(doc, before=None):
			return any(inner(row, None) for row in (doc.get(table) or ()))

		return any_row
	if agg == "all":

		def every_row(doc, before=None):
			rows = doc.get(table) or ()
			# "All items have qty > 0" says nothing of a document without items: false, not vacuously true.
			return bool(rows) and all(inner(row, None) for row in rows)

		return every_row

	def computed(doc, before=None):
		return inner({key: leaf.value_of(doc)}, None)

	return computed


def aggregate_value_field(agg, row_field, label):
	if agg == "count":
		return {"fieldtype": "Int", "label": _("number of {0}").format(label)}
	return {
		"fieldtype": row_field["fieldtype"],
		"options": row_field.get("options"),
		"label": _("sum of {0}").format(label),
	}


# ----------------------------------------------------------------------------------------------
# Filling the values dict: one load per linked document, shared by the site and the simulator


def fetch_linked_values(values, linked_paths, load):
	"""The values of ``linked_paths`` (path → LinkedPath) for the document ``values``.

	``load(doctype, name, fieldnames)`` returns that document's values (a dict) or None when it does
	not exist; it is called once per linked document with every field any path needs from it.
	Returns {path: value}; a path through an empty or dangling link reads None."""
	if not linked_paths or values is None:
		return {}
	found = {}
	cache = {}

	def plan(level, source_of):
		"""The (doctype, name) → fieldnames to load at one depth."""
		wanted = {}
		for path, linked in linked_paths.items():
			if len(linked.hops) <= level:
				continue
			source = source_of(path)
			if source is None:
				continue
			hop = linked.hops[level]
			name = source.get(hop.fieldname)
			if not name or (hop.type_field and source.get(hop.type_field) != hop.doctype):
				continue
			needs = linked.hops[level + 1].fieldname if len(linked.hops) > level + 1 else linked.fieldname
			wanted.setdefault((hop.doctype, str(name)), set()).add(needs)
			if len(linked.hops) > level + 1 and linked.hops[level + 1].type_field:
				wanted[(hop.doctype, str(name))].add(linked.hops[level + 1].type_field)
		return wanted

	loaded_fields = {}

	def load_all(wanted):
		for key, fieldnames in wanted.items():
			missing = fieldnames - loaded_fields.setdefault(key, set())
			if not missing or (key in cache and cache[key] is None):
				continue
			row = load(key[0], key[1], sorted(missing))
			loaded_fields[key] |= missing
			cache[key] = None if row is None else {**(cache.get(key) or {}), **row}

	def doc_at(path, level):
		"""The linked document ``path`` reaches after ``level`` hops (0: the document itself)."""
		linked = linked_paths[path]
		current = values
		for hop in linked.hops[:level]:
			if current is None:
				return None
			name = current.get(hop.fieldname)
			if not name or (hop.type_field and current.get(hop.type_field) != hop.doctype):
				return None
			current = cache.get((hop.doctype, str(name)))
		return current

	for level in range(MAX_LINK_HOPS):
		load_all(plan(level, lambda path, level=level: doc_at(path, level)))
	for path, linked in linked_paths.items():
		last = doc_at(path, len(linked.hops))
		found[path] = last.get(linked.fieldname) if last is not None else None
	return found


def compile_aggregate_leaf(node, fields, path, problems, get_fields, compile_leaf):
	"""Compile ``{"field": "items.qty", "agg": "any", "op": ">", "value": 100}``. ``compile_leaf`` is
	the ordinary leaf compiler, used for the test on each row or on the computed count or sum."""
	unknown_keys = set(node) - {"field", "op", "value", "agg"}
	if unknown_keys:
		problems.add(path, _("unknown key(s) {0} in a condition").format(", ".join(sorted(unknown_keys))))
		return None
	fieldname, agg = node.get("field"), node.get("agg")
	try:
		table, row_fieldname, row_field, row_fields, label = resolve_table_field(
			fieldname, agg, fields, get_fields
		)
	except LinkedPathError as error:
		problems.add(path, str(error), field=fieldname, value=fieldname)
		return None
	operator = get_operator(node.get("op"))
	if operator is not None and operator.needs_before:
		problems.add(
			path,
			_("operator {0} does not apply to {1} of {2}").format(
				describe_value(node.get("op")), agg, describe_value(fieldname)
			),
			field=fieldname,
			value=node.get("op"),
		)
		return None
	inner_node = {"op": node.get("op"), "value": node.get("value")}
	if agg in ("any", "all"):
		inner_node["field"] = row_fieldname
		inner_fields = row_fields
	else:
		inner_node["field"] = AggregateLeaf.VALUE_KEY
		inner_fields = {AggregateLeaf.VALUE_KEY: aggregate_value_field(agg, row_field, label)}
	inner_problems_before = len(problems.problems)
	inner = compile_leaf(inner_node, inner_fields, path, problems)
	if inner is None:
		# The inner leaf names its own field; say which table path it belongs to.
		for problem in problems.problems[inner_problems_before:]:
			problem.message = f"{agg} of {fieldname}: {problem.message}".replace(
				AggregateLeaf.VALUE_KEY, (inner_fields.get(AggregateLeaf.VALUE_KEY) or {}).get("label", label)
			)
			problem.field = fieldname
		return None
	leaf = AggregateLeaf()
	leaf.agg = agg
	leaf.fieldname = fieldname
	leaf.table = table
	leaf.row_field = row_fieldname
	leaf.inner = inner
	leaf.op = node.get("op")
	leaf.path = path
	leaf.label = _AGGREGATE_LABELS[agg]().format(label)
	leaf.test = aggregate_test(leaf)
	return leaf


def linked_paths_of(rules):
	"""Every linked path (path → LinkedPath) a set of compiled rules reads: fetched once for all."""
	paths = {}
	for rule in rules:
		paths.update(getattr(rule, "linked_paths", None) or {})
	return paths
