"""Linked records for the offline simulator: the documents a rule's linked conditions read
(``customer.territory``), given beside the records since an export of Sales Orders does not carry
the Customers they link to.

The file is JSON: ``{"Customer": {"CUST-0001": {"territory": "North", "customer_group": "Key"}}}``:
document type → name → field values. ``crm-automation simulate pack.json orders.csv --linked
customers.json``. A path through a link that is empty, or to a record the file does not hold,
reads nothing (as a dangling link does on a site). No Frappe here.
"""

from crm_automation.engine.fieldtypes import describe_value
from crm_automation.engine.linked_paths import fetch_linked_values
from crm_automation.offline.input_files import InputError, read_json_file

SHAPE = '{"Customer": {"CUST-0001": {"territory": "North"}}}'


def read_linked_records(path):
	"""The linked records of ``path``; InputError naming the file and the entry for a bad shape."""
	data = read_json_file(path, "linked records file")
	return checked_linked_records(data, path)


def checked_linked_records(data, where="linked"):
	if not isinstance(data, dict):
		raise InputError(where, f"linked records are an object of document types: {SHAPE}")
	for doctype, records in data.items():
		if not isinstance(records, dict):
			raise InputError(f"{where}.{doctype[:80]}", f"must be an object of records by name: {SHAPE}")
		for name, values in records.items():
			if not isinstance(values, dict):
				raise InputError(
					f"{where}.{doctype[:80]}.{name[:80]}",
					f"must be an object of field values, not {describe_value(values)[:80]}",
				)
	return data


def loader(linked):
	"""The ``load`` function engine.linked.fetch_linked_values calls, reading from ``linked``."""

	def load(doctype, name, fieldnames):
		record = (linked.get(doctype) or {}).get(name)
		if record is None:
			return None
		return {
			fieldname: (name if fieldname == "name" else record.get(fieldname)) for fieldname in fieldnames
		}

	return load


def reader(linked):
	"""The ``read`` a template's ``get_value(doctype, name, fieldname)`` calls offline
	(engine/reads.py): the linked records file stands in for the site's records. ``name`` may be a
	dict of filters: the first record of that doctype whose values match them."""

	def read(doctype, name, fieldname):
		records = linked.get(doctype) or {}
		if isinstance(name, dict):
			name = next(
				(key for key, values in records.items() if _matches({**values, "name": key}, name)), None
			)
		record = records.get(name) if name is not None else None
		if record is None:
			return None
		return name if fieldname == "name" else record.get(fieldname)

	return read


def _matches(values, filters):
	return all(values.get(field) == wanted for field, wanted in filters.items())


def with_linked(values, linked_paths, linked):
	"""``values`` with the linked paths the rules read filled in from ``linked``."""
	if not linked_paths or values is None:
		return values
	return {**values, **fetch_linked_values(values, linked_paths, loader(linked or {}))}
