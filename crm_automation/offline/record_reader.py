"""Rows of a records file (see record_files) turned into typed records, checked against the
doctype's fields: one located problem per bad value, reported once per unknown column."""

import datetime
import math

from crm_automation.engine.conditions import with_standard_fields
from crm_automation.engine.fieldtypes import (
	BOOLEAN,
	DATE,
	DATETIME,
	INTEGER,
	NUMBER,
	TEXT,
	TIME,
	ValueTypeError,
	describe_value,
	kind_of,
	parse_rule_value,
	select_options,
)
from crm_automation.engine.sequence_story import parse_span
from crm_automation.offline.record_files import Unreadable
from crm_automation.offline.replies import read_replies

_INT_FIELD = {"fieldtype": "Int"}
_FLOAT_FIELD = {"fieldtype": "Float"}

_SKIP = "skip"
_UNKNOWN = "unknown"
_VALUE = "value"
_BEFORE = "before"
_ACTIVITY = "activity"
_DAYS_IDLE = "days_idle"
_BEFORE_OBJECT = "before object"
_CHANGES = "changes"
_REPLIES = "replies"
_ROWS = "child rows"


def _value_parser(field):
	"""A parser for one column: a fast path for the plain text the file holds, and the engine's own
	strict ``parse_rule_value`` for everything else, so errors read the same as in a rule."""
	fieldtype = field["fieldtype"]
	kind = kind_of(fieldtype)

	def strict(value):
		return parse_rule_value(value, field)

	if kind == TEXT and fieldtype == "Select":
		options = frozenset(select_options(field.get("options")))
		return lambda value: (
			value if type(value) is str and (not options or value in options) else strict(value)
		)
	if kind == TEXT:
		return lambda value: value if type(value) is str else strict(value)
	if kind in (NUMBER, INTEGER):
		whole = kind == INTEGER

		def parse_number(value):
			if type(value) is str and "_" not in value:
				try:
					number = float(value)
				except ValueError:
					return strict(value)
				if math.isfinite(number) and (not whole or number.is_integer()):
					return int(number) if whole else number
			return strict(value)

		return parse_number
	if kind == BOOLEAN:
		return lambda value: (
			_BOOLEANS.get(value) if type(value) is str and value in _BOOLEANS else strict(value)
		)
	parse_iso = {
		DATE: datetime.date.fromisoformat,
		DATETIME: datetime.datetime.fromisoformat,
		TIME: datetime.time.fromisoformat,
	}.get(kind)
	if parse_iso is None:
		return strict

	def parse_moment(value):
		if type(value) is str:
			try:
				return parse_iso(value.strip())
			except ValueError:
				pass
		return strict(value)

	return parse_moment


_BOOLEANS = {"0": 0, "1": 1}


class RecordReader:
	"""Turns rows into records checked against the field types. One plan per (doctype, column) is
	worked out once, so a million rows cost a lookup per cell; an unknown column is reported once."""

	def __init__(self, meta, report, default_doctype=None):
		self.meta = meta
		self.report = report
		self.default_doctype = default_doctype
		self._fields = {}
		self._plans = {}

	def read(self, where, row):
		"""A record ({where, doctype, values, before, activities, days_idle}) or None if the row has
		problems (each reported)."""
		if isinstance(row, Unreadable):
			self.report(where, row.message)
			return None
		if not isinstance(row, dict):
			self.report(where, f"a record must be an object, not {describe_value(row)[:80]}")
			return None
		doctype = row.get("doctype") or self.default_doctype
		if not isinstance(doctype, str) or doctype not in self.meta:
			shown = describe_value(doctype)[:80]
			self.report(where, f"unknown doctype {shown} (give a doctype column or --doctype)")
			return None
		values, before, activities = {}, {}, {}
		changes, replies = [], []
		days_idle = 0.0
		ok = True
		for key, value in row.items():
			plan = self._plans.get((doctype, key)) or self._plan(doctype, key, where)
			kind = plan[0]
			if kind is _SKIP or kind is _UNKNOWN:
				continue
			if kind is _BEFORE_OBJECT:
				ok = self._read_before_object(where, doctype, value, before) and ok
				continue
			if kind is _CHANGES:
				ok = self._read_changes(where, doctype, value, changes) and ok
				continue
			if kind is _REPLIES:  # incoming e-mails on the virtual clock (offline/replies.py)
				read = read_replies(f"{where}.replies", value, self.report)
				ok = read is not None and ok
				replies = read or []
				continue
			if kind is _ROWS:
				rows = self._rows(where, key, value)
				ok = rows is not None and ok
				values[plan[1]] = rows or []
				continue
			if kind is _ACTIVITY:
				count = self._count(where, key, value)
				ok = count is not None and ok
				activities[plan[1]] = count
				continue
			if kind is _DAYS_IDLE:
				days = self._days(where, key, value)
				ok = days is not None and ok
				days_idle = days or 0.0
				continue
			parsed = self._parse(where, key, plan, value)
			if parsed is _INVALID:
				ok = False
			elif kind is _VALUE:
				values[plan[1]] = parsed
			else:
				before[plan[1]] = parsed
		if not ok:
			return None
		if values.get("name") is None:
			values["name"] = where
		return {
			"where": where,
			"doctype": doctype,
			"values": values,
			"before": {**values, **before} if before else None,
			"activities": activities,
			"days_idle": days_idle,
			"changes": changes,
			"replies": replies,
		}

	def _plan(self, doctype, key, where):
		fields = self._fields.get(doctype)
		if fields is None:
			fields = self._fields[doctype] = with_standard_fields(self.meta[doctype])
		if key in ("doctype",):
			plan = (_SKIP,)
		elif key == "days_idle":
			plan = (_DAYS_IDLE,)
		elif key == "before":
			plan = (_BEFORE_OBJECT,)
		elif key == "changes":
			plan = (_CHANGES,)
		elif key == "replies":
			plan = (_REPLIES,)
		elif key.startswith("activity:") and key[len("activity:") :].strip():
			plan = (_ACTIVITY, key[len("activity:") :].strip())
		else:
			target, fieldname = _VALUE, key
			if key.startswith("before:"):
				target, fieldname = _BEFORE, key[len("before:") :]
			field = fields.get(fieldname)
			if field is not None and field.get("fieldtype") == "Table" and target is _VALUE:
				# Child rows (JSON records only) for aggregate conditions: items.qty, count of items.
				plan = (_ROWS, fieldname)
			elif field is None or kind_of(field.get("fieldtype")) == "unsupported":
				shown = key if len(key) <= 80 else key[:80] + "…"
				self.report(f"{where}.{shown}", f"{doctype} has no field {fieldname[:80]!r}")
				plan = (_UNKNOWN,)
			else:
				plan = (target, fieldname, field, _value_parser(field))
		self._plans[(doctype, key)] = plan
		return plan

	def _rows(self, where, key, value):
		"""Child rows as given: a list of objects (their values are read leniently by the engine)."""
		if value in (None, ""):
			return []
		if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
			self.report(f"{where}.{key[:80]}", "child rows must be a list of objects, one per row")
			return None
		return value

	def _parse(self, where, key, plan, value):
		if value is None or value == "":
			return None
		try:
			return plan[3](value)
		except ValueTypeError as error:
			field = plan[2]
			self.report(f"{where}.{key}", f"{_shorten(str(error))} for {plan[1]} ({field['fieldtype']})")
			return _INVALID

	def _read_before_object(self, where, doctype, value, before):
		if not isinstance(value, dict):
			self.report(
				f"{where}.before", f"must be an object of field values, not {describe_value(value)[:80]}"
			)
			return False
		ok = True
		for key, item in value.items():
			plan = self._plans.get((doctype, f"before:{key}")) or self._plan(doctype, f"before:{key}", where)
			if plan[0] is not _BEFORE:
				continue
			parsed = self._parse(where, f"before.{key}", plan, item)
			if parsed is _INVALID:
				ok = False
			else:
				before[plan[1]] = parsed
		return ok

	def _read_changes(self, where, doctype, value, changes):
		"""Saves on the virtual clock of `simulate --until`: [{"after": "30h", "values": {...}}]."""
		if not isinstance(value, list):
			self.report(f"{where}.changes", f"must be a list of {{after, values}}, not {describe_value(value)[:80]}")
			return False
		ok = True
		for i, item in enumerate(value):
			path = f"{where}.changes[{i}]"
			if not isinstance(item, dict) or not isinstance(item.get("values"), dict):
				self.report(path, "must be an object with after (such as 30h or 2d) and values")
				ok = False
				continue
			try:
				parse_span(item.get("after"))
			except ValueError as error:
				self.report(f"{path}.after", str(error))
				ok = False
				continue
			values = {}
			fields = self._fields.get(doctype) or with_standard_fields(self.meta[doctype])
			for key, raw in item["values"].items():
				field = fields.get(key)
				if field is None or field.get("fieldtype") == "Table" or kind_of(field.get("fieldtype")) == "unsupported":
					self.report(f"{path}.values.{str(key)[:80]}", f"{doctype} has no field {str(key)[:80]!r} to change")
					ok = False
					continue
				plan = self._plans.get((doctype, key)) or self._plan(doctype, key, where)
				parsed = self._parse(f"{path}.values", key, plan, raw)
				if parsed is _INVALID:
					ok = False
				else:
					values[plan[1]] = parsed
			changes.append({"after": item["after"], "values": values})
		return ok

	def _count(self, where, key, value):
		if value is None or value == "":
			return 0
		try:
			count = _parse_count(value)
		except ValueTypeError:
			count = -1
		if count < 0:
			self.report(
				f"{where}.{key}",
				f"{_shorten(describe_value(value))} is not a number of activities (0, 1, 2, ...)",
			)
			return None
		return count

	def _days(self, where, key, value):
		if value is None or value == "":
			return 0.0
		try:
			days = _parse_days(value)
		except ValueTypeError:
			days = -1.0
		if not 0 <= days < 1e6:
			self.report(
				f"{where}.{key}", f"{_shorten(describe_value(value))} is not a number of days (0 or more)"
			)
			return None
		return days


_INVALID = object()
_parse_count = _value_parser(_INT_FIELD)
_parse_days = _value_parser(_FLOAT_FIELD)


def _shorten(text, limit=200):
	return text if len(text) <= limit else text[:limit] + "…"
