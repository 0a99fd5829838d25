"""Records for the simulator, read one at a time so a file of any size runs in flat memory.

Formats, by the file's extension:

* ``.csv``: a header row, then one record a row; a ``doctype`` column or ``--doctype``;
* ``.jsonl`` / ``.ndjson``: one JSON object a line;
* anything else: JSON, either a list of objects with ``"doctype"`` or ``{"Lead": [...], ...}``.
  Both are streamed element by element (no need to hold the file); one record may be at most
  ``MAX_RECORD_CHARS`` long.

Column conventions: ``activity:<type>`` gives an activity count, ``days_idle`` the idle days for
decay, ``before:<field>`` (or a ``before`` object in JSON) the values before the save.

A file that cannot be read at all (missing, not UTF-8, broken JSON, a CSV cell over the CSV limit)
raises InputError naming the line; a record with a bad value is reported through ``report(where,
message)`` naming the row and the field, and reading goes on.
"""

import codecs
import csv
import datetime
import json
import math
import os
import re

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
from crm_automation.input_files import InputError, describe_os_error, open_binary

MAX_LINE_BYTES = 1_000_000
MAX_RECORD_CHARS = 1_000_000
CHUNK_BYTES = 1 << 16
CSV_FIELD_LIMIT = csv.field_size_limit()
JSON_LINES_EXTENSIONS = (".jsonl", ".ndjson")

_INT_FIELD = {"fieldtype": "Int"}
_FLOAT_FIELD = {"fieldtype": "Float"}
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER_TAIL = re.compile(r"[0-9.eE+\-]*")


class Unreadable:
	"""A row that is there but cannot be a record (wrong number of cells, a JSON line that does not
	parse): reported, and reading goes on."""

	__slots__ = ("message",)

	def __init__(self, message):
		self.message = message


class RowSource:
	"""Iterates (where, row) over a records file; ``bytes_read`` and ``size`` drive a progress bar."""

	def __init__(self, path):
		self.path = path
		self.name = os.path.basename(path)
		self.bytes_read = 0
		self.size = 0

	def __iter__(self):
		with open_binary(self.path) as handle:
			try:
				self.size = os.fstat(handle.fileno()).st_size
				lower = self.path.lower()
				if lower.endswith(".csv"):
					yield from self._csv_rows(handle)
				elif lower.endswith(JSON_LINES_EXTENSIONS):
					yield from self._json_line_rows(handle)
				else:
					yield from self._json_rows(handle)
			except OSError as error:
				raise InputError(self.path, describe_os_error(error))

	def _text_lines(self, handle):
		"""Physical lines, decoded one by one so a bad byte is reported with its line."""
		number = 0
		while True:
			raw = handle.readline(MAX_LINE_BYTES + 1)
			if not raw:
				return
			number += 1
			self.bytes_read += len(raw)
			if len(raw) > MAX_LINE_BYTES:
				raise InputError(f"{self.name}:{number}", f"a line longer than {MAX_LINE_BYTES:,} bytes")
			try:
				text = raw.decode("utf-8")
			except UnicodeDecodeError as error:
				bad = raw[error.start : error.start + 1].hex()
				raise InputError(
					f"{self.name}:{number}", f"not UTF-8 text (byte 0x{bad}); save the file as UTF-8"
				)
			if number == 1 and text.startswith("\ufeff"):
				text = text[1:]  # Excel's "CSV UTF-8" starts with a byte order mark
			yield text

	def _csv_rows(self, handle):
		reader = csv.reader(self._text_lines(handle))
		header = self._next_csv_row(reader)
		if header is None:
			raise InputError(self.name, "empty: a CSV file needs a header row")
		header = [column.strip() for column in header]
		for position, column in enumerate(header, start=1):
			if not column:
				raise InputError(f"{self.name}:1", f"column {position} of the header has no name")
			if header.index(column) != position - 1:
				raise InputError(f"{self.name}:1", f"column {column!r} appears twice in the header")
		width = len(header)
		while True:
			start = reader.line_num + 1
			cells = self._next_csv_row(reader, start)
			if cells is None:
				return
			if not cells:
				continue
			where = f"{self.name}:{start}"
			if len(cells) > width and not any(cell.strip() for cell in cells[width:]):
				cells = cells[:width]  # trailing empty cells, as spreadsheets write them
			if len(cells) != width:
				yield where, Unreadable(f"{len(cells)} cells, but the header has {width} columns")
				continue
			yield where, dict(zip(header, cells, strict=True))

	def _next_csv_row(self, reader, start=1):
		try:
			return next(reader)
		except StopIteration:
			return None
		except csv.Error as error:
			message = str(error)
			if "field larger than field limit" in message:
				message = f"a cell longer than {CSV_FIELD_LIMIT:,} characters (the CSV limit)"
			else:
				message = f"not valid CSV ({message})"
			raise InputError(f"{self.name}:{start}", message)

	def _json_line_rows(self, handle):
		for number, text in enumerate(self._text_lines(handle), start=1):
			if not text.strip():
				continue
			where = f"{self.name}:{number}"
			try:
				yield where, json.loads(text)
			except json.JSONDecodeError as error:
				yield where, Unreadable(f"not valid JSON ({error.msg}, column {error.colno})")
			except RecursionError:
				yield where, Unreadable("JSON nested too deeply")

	def _json_rows(self, handle):
		stream = JsonStream(handle, self)
		first = stream.peek()
		if first == "[":
			for index, item in enumerate(stream.array_items()):
				yield f"{self.name}[{index}]", item
		elif first == "{":
			for doctype, index, item in stream.object_of_arrays():
				if isinstance(item, dict):
					item = {**item, "doctype": doctype}
				yield f'{self.name}["{doctype}"][{index}]', item
		elif first == "":
			raise InputError(self.name, "empty: no records")
		else:
			raise InputError(
				f"{self.name}:{stream.line()}",
				'a records file holds a JSON list of records or {"Lead": [records], ...}',
			)
		stream.expect_end()


class JsonStream:
	"""A JSON document read a chunk at a time: the elements of its top-level list (or of the lists
	in its top-level object) are decoded one by one with ``json``'s own decoder."""

	def __init__(self, handle, source):
		self.handle = handle
		self.source = source
		self.name = source.name
		self.text_decoder = codecs.getincrementaldecoder("utf-8")()
		self.json_decoder = json.JSONDecoder()
		self.buffer = ""
		self.pos = 0
		self.lines_dropped = 0
		self.started = False
		self.eof = False

	def line(self, pos=None):
		return self.lines_dropped + self.buffer.count("\n", 0, self.pos if pos is None else pos) + 1

	def _read_more(self):
		if self.eof:
			return False
		data = self.handle.read(CHUNK_BYTES)
		self.source.bytes_read += len(data)
		try:
			text = self.text_decoder.decode(data, final=not data)
		except UnicodeDecodeError as error:
			line = self.lines_dropped + self.buffer.count("\n") + data.count(b"\n", 0, error.start) + 1
			bad = data[error.start : error.start + 1].hex()
			raise InputError(f"{self.name}:{line}", f"not UTF-8 text (byte 0x{bad}); save the file as UTF-8")
		if not self.started and text:
			self.started = True
			text = text.removeprefix("\ufeff")
		if not data:
			self.eof = True
		if self.pos:
			self.lines_dropped += self.buffer.count("\n", 0, self.pos)
			self.buffer = self.buffer[self.pos :]
			self.pos = 0
		self.buffer += text
		return True

	def peek(self):
		"""The next character that is not white space ('' at the end), without taking it."""
		while True:
			self.pos = _WHITESPACE.match(self.buffer, self.pos).end()
			if self.pos < len(self.buffer):
				return self.buffer[self.pos]
			if not self._read_more():
				return ""

	def expect(self, characters, what):
		found = self.peek()
		if not found or found not in characters:
			shown = repr(found) if found else "the end of the file"
			raise InputError(f"{self.name}:{self.line()}", f"not valid JSON (expected {what}, found {shown})")
		self.pos += 1
		return found

	def value(self):
		self.peek()
		while True:
			try:
				value, end = self.json_decoder.raw_decode(self.buffer, self.pos)
			except json.JSONDecodeError as error:
				pending = len(self.buffer) - self.pos
				truncated = error.msg.startswith("Unterminated string") or error.pos + 64 >= len(self.buffer)
				if self.eof or not truncated:
					raise InputError(f"{self.name}:{self.line(error.pos)}", f"not valid JSON ({error.msg})")
				if pending > MAX_RECORD_CHARS:
					raise InputError(
						f"{self.name}:{self.line()}", f"a record longer than {MAX_RECORD_CHARS:,} characters"
					)
			except RecursionError:
				raise InputError(f"{self.name}:{self.line()}", "JSON nested too deeply")
			else:
				# A number that reaches the end of the buffer may go on in the next chunk ("0" of "0.5").
				number = type(value) in (int, float) and _NUMBER_TAIL.match(self.buffer, end).end() == len(
					self.buffer
				)
				if self.eof or not number:
					self.pos = end
					return value
			self._read_more()

	def array_items(self):
		self.expect("[", "[")
		if self.peek() == "]":
			self.pos += 1
			return
		while True:
			yield self.value()
			if self.expect(",]", "a comma or ]") == "]":
				return

	def object_of_arrays(self):
		self.expect("{", "{")
		if self.peek() == "}":
			self.pos += 1
			return
		while True:
			if self.peek() != '"':
				self.expect('"', "a doctype name in double quotes")
			doctype = self.value()
			self.expect(":", "a colon")
			if self.peek() != "[":
				raise InputError(f"{self.name}:{self.line()}", f'"{doctype}" must be a list of records')
			for index, item in enumerate(self.array_items()):
				yield doctype, index, item
			if self.expect(",}", "a comma or }") == "}":
				return

	def expect_end(self):
		if self.peek():
			raise InputError(f"{self.name}:{self.line()}", "not valid JSON (more text after the records)")


# ----------------------------------------------------------------------------------------------
# Rows to typed records

_SKIP = "skip"
_UNKNOWN = "unknown"
_VALUE = "value"
_BEFORE = "before"
_ACTIVITY = "activity"
_DAYS_IDLE = "days_idle"
_BEFORE_OBJECT = "before object"


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
		elif key.startswith("activity:") and key[len("activity:") :].strip():
			plan = (_ACTIVITY, key[len("activity:") :].strip())
		else:
			target, fieldname = _VALUE, key
			if key.startswith("before:"):
				target, fieldname = _BEFORE, key[len("before:") :]
			field = fields.get(fieldname)
			if field is None or kind_of(field.get("fieldtype")) == "unsupported":
				shown = key if len(key) <= 80 else key[:80] + "…"
				self.report(f"{where}.{shown}", f"{doctype} has no field {fieldname[:80]!r}")
				plan = (_UNKNOWN,)
			else:
				plan = (target, fieldname, field, _value_parser(field))
		self._plans[(doctype, key)] = plan
		return plan

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
