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
raises InputError naming the line; a row that cannot be a record (too many cells, a JSON line that
does not parse) comes out as Unreadable and reading goes on. ``record_reader`` types the rows.
"""

import codecs
import csv
import json
import os
import re

from crm_automation.offline.input_files import InputError, describe_os_error, open_binary

MAX_LINE_BYTES = 1_000_000
MAX_RECORD_CHARS = 1_000_000
CHUNK_BYTES = 1 << 16
CSV_FIELD_LIMIT = csv.field_size_limit()
JSON_LINES_EXTENSIONS = (".jsonl", ".ndjson")

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
