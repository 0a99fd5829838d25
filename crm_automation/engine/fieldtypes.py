"""Fieldtypes and how values of each are coerced, the way Frappe stores them.

Two kinds of coercion live here:

* ``coerce_document_value`` runs on every evaluation and is lenient like Frappe's ``flt``/``cint``:
  a document straight from the database or a form never makes a rule crash.
* ``parse_rule_value`` runs once at compile time and is strict: a value an administrator typed
  that cannot be a number, date or option of the field is an error naming the field.

Empty values are deliberate: numbers and Check treat None and "" as 0 (Frappe stores 0), text
treats None as "" and dates keep None (no date), so ``is set`` and comparisons behave as in the desk.
"""

import datetime
import math
import re

from .i18n import _

NUMBER = "number"
INTEGER = "integer"
BOOLEAN = "boolean"
DATE = "date"
DATETIME = "datetime"
TIME = "time"
TEXT = "text"
UNSUPPORTED = "unsupported"

_KIND_BY_FIELDTYPE = {
	"Int": INTEGER,
	"Long Int": INTEGER,
	"Duration": INTEGER,
	"Float": NUMBER,
	"Currency": NUMBER,
	"Percent": NUMBER,
	"Rating": NUMBER,
	"Check": BOOLEAN,
	"Date": DATE,
	"Datetime": DATETIME,
	"Time": TIME,
	"Data": TEXT,
	"Select": TEXT,
	"Link": TEXT,
	"Dynamic Link": TEXT,
	"Small Text": TEXT,
	"Text": TEXT,
	"Long Text": TEXT,
	"Text Editor": TEXT,
	"HTML Editor": TEXT,
	"Markdown Editor": TEXT,
	"Code": TEXT,
	"Read Only": TEXT,
	"Phone": TEXT,
	"Autocomplete": TEXT,
	"Color": TEXT,
	"JSON": TEXT,
	"Barcode": TEXT,
	"Attach": TEXT,
	"Attach Image": TEXT,
	"Password": UNSUPPORTED,
	"Table": UNSUPPORTED,
	"Table MultiSelect": UNSUPPORTED,
	"Section Break": UNSUPPORTED,
	"Column Break": UNSUPPORTED,
	"Tab Break": UNSUPPORTED,
	"HTML": UNSUPPORTED,
	"Button": UNSUPPORTED,
	"Image": UNSUPPORTED,
	"Fold": UNSUPPORTED,
	"Heading": UNSUPPORTED,
	"Geolocation": UNSUPPORTED,
	"Signature": UNSUPPORTED,
}

# Fields every Frappe document has, whatever its DocType says.
STANDARD_FIELDS = {
	"name": {"fieldtype": "Data", "label": "ID"},
	"owner": {"fieldtype": "Link", "options": "User", "label": "Created By"},
	"creation": {"fieldtype": "Datetime", "label": "Created On"},
	"modified": {"fieldtype": "Datetime", "label": "Last Updated On"},
	"modified_by": {"fieldtype": "Link", "options": "User", "label": "Last Updated By"},
	"docstatus": {"fieldtype": "Int", "label": "Document Status"},
	"idx": {"fieldtype": "Int", "label": "Index"},
}


def kind_of(fieldtype):
	return _KIND_BY_FIELDTYPE.get(fieldtype, UNSUPPORTED)


def is_numeric(kind):
	return kind in (NUMBER, INTEGER)


def is_temporal(kind):
	return kind in (DATE, DATETIME, TIME)


def select_options(options):
	"""Options of a Select field as Frappe stores them: one per line, blank lines kept as ''."""
	if not options:
		return []
	if isinstance(options, list | tuple):
		return [str(o) for o in options]
	return [line.strip() for line in str(options).split("\n")]


# ----------------------------------------------------------------------------------------------
# Lenient coercion of document values (hot path)


def _to_float(value):
	if value is None or value == "":
		return 0.0
	if type(value) is float:
		return value
	try:
		return float(value)
	except (TypeError, ValueError):
		try:
			return float(str(value).replace(",", ""))
		except ValueError:
			return 0.0


def _to_int(value):
	if value is None or value == "":
		return 0
	if type(value) is int:
		return value
	try:
		return int(float(value))
	except (TypeError, ValueError):
		return 0


def _to_bool(value):
	if type(value) is int:
		return 1 if value else 0
	if isinstance(value, str):
		return 1 if value.strip().lower() in ("1", "true", "yes") else 0
	return 1 if value else 0


def _to_date(value):
	if value is None or value == "":
		return None
	if type(value) is datetime.date:
		return value
	if isinstance(value, datetime.datetime):
		return value.date()
	try:
		return datetime.date.fromisoformat(str(value)[:10])
	except ValueError:
		return None


def _to_datetime(value):
	if value is None or value == "":
		return None
	if isinstance(value, datetime.datetime):
		return value.replace(tzinfo=None) if value.tzinfo else value
	if isinstance(value, datetime.date):
		return datetime.datetime.combine(value, datetime.time())
	try:
		return datetime.datetime.fromisoformat(str(value).strip())
	except ValueError:
		return None


def _to_time(value):
	if value is None or value == "":
		return None
	if isinstance(value, datetime.time):
		return value
	if isinstance(value, datetime.timedelta):
		# MariaDB hands Time columns to Python as timedelta
		seconds = int(value.total_seconds()) % 86400
		return datetime.time(seconds // 3600, seconds % 3600 // 60, seconds % 60)
	try:
		return datetime.time.fromisoformat(str(value).strip())
	except ValueError:
		return None


def _to_text(value):
	if value is None:
		return ""
	if type(value) is str:
		return value
	return str(value)


_DOCUMENT_COERCERS = {
	NUMBER: _to_float,
	INTEGER: _to_int,
	BOOLEAN: _to_bool,
	DATE: _to_date,
	DATETIME: _to_datetime,
	TIME: _to_time,
	TEXT: _to_text,
}


def document_coercer(kind):
	return _DOCUMENT_COERCERS[kind]


def coerce_document_value(value, fieldtype):
	return _DOCUMENT_COERCERS[kind_of(fieldtype)](value)


# ----------------------------------------------------------------------------------------------
# Strict parsing of values typed into a rule (compile time)

_NUMBER_RE = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


class ValueTypeError(ValueError):
	"""A rule value that cannot be a value of the field's type; the message names what was expected."""


def describe_value(value):
	return f'"{value}"' if isinstance(value, str) else repr(value)


def parse_rule_value(value, field):
	"""Coerce one rule value to the field's type, or raise ValueTypeError saying why not."""
	fieldtype = field["fieldtype"]
	kind = kind_of(fieldtype)
	if kind in (NUMBER, INTEGER):
		if isinstance(value, bool) or not (
			isinstance(value, int | float) or (isinstance(value, str) and _NUMBER_RE.match(value))
		):
			raise ValueTypeError(_("{0} is not a number").format(describe_value(value)))
		number = float(value)
		if not math.isfinite(number):
			# 1e400 parses to infinity (and JSON allows NaN): no field holds either
			raise ValueTypeError(_("{0} is not a finite number").format(describe_value(value)))
		if kind == INTEGER:
			if number != int(number):
				raise ValueTypeError(_("{0} is not a whole number").format(describe_value(value)))
			return int(number)
		return number
	if kind == BOOLEAN:
		if value in (0, 1, True, False):
			return int(bool(value))
		if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false", "yes", "no"):
			return 1 if value.strip().lower() in ("1", "true", "yes") else 0
		raise ValueTypeError(_("{0} is not 0 or 1").format(describe_value(value)))
	if kind == DATE:
		parsed = _parse_iso(value, datetime.date.fromisoformat, datetime.date)
		if parsed is None:
			raise ValueTypeError(_("{0} is not a date (YYYY-MM-DD)").format(describe_value(value)))
		return parsed
	if kind == DATETIME:
		parsed = _parse_iso(value, datetime.datetime.fromisoformat, datetime.datetime)
		if parsed is None:
			raise ValueTypeError(
				_("{0} is not a date and time (YYYY-MM-DD HH:MM:SS)").format(describe_value(value))
			)
		return parsed
	if kind == TIME:
		parsed = _parse_iso(value, datetime.time.fromisoformat, datetime.time)
		if parsed is None:
			raise ValueTypeError(_("{0} is not a time (HH:MM:SS)").format(describe_value(value)))
		return parsed
	if kind == TEXT:
		if isinstance(value, dict | list | tuple | set):
			raise ValueTypeError(_("{0} is not text").format(describe_value(value)))
		text = _to_text(value)
		if fieldtype == "Select":
			options = select_options(field.get("options"))
			if options and text not in options:
				choices = ", ".join(o for o in options if o)
				raise ValueTypeError(
					_("{0} is not one of the options ({1})").format(describe_value(value), choices)
				)
		return text
	raise ValueTypeError(_("fields of type {0} cannot be compared").format(fieldtype))


def _parse_iso(value, parser, expected_type):
	if type(value) is expected_type:
		return value
	if expected_type is datetime.datetime and type(value) is datetime.date:
		return datetime.datetime.combine(value, datetime.time())
	if not isinstance(value, str) or not value.strip():
		return None
	try:
		return parser(value.strip())
	except ValueError:
		return None


def split_list(value):
	"""A list typed into a Small Text: one item per line or comma separated."""
	if not value:
		return []
	if isinstance(value, list | tuple):
		return [str(v).strip() for v in value if str(v).strip()]
	return [item.strip() for item in re.split(r"[\n,]", str(value)) if item.strip()]
