"""Reading files a user hands to the command line (packs, field lists, records), refusing bad ones
with one line that names the file and the spot, never a traceback. No Frappe here: the offline
`crm-automation` command and `bench ... crm-automation import-pack` share it.
"""

import json
import os

# A pack or a field list is a few hundred KB at most; anything this big is not one.
MAX_JSON_FILE_BYTES = 50_000_000


class InputError(Exception):
	"""A file that cannot be used at all: ``where`` is the file (and line), ``message`` says why."""

	def __init__(self, where, message):
		super().__init__(f"{where}: {message}")
		self.where = where
		self.message = message


def describe_os_error(error):
	if isinstance(error, FileNotFoundError):
		return "no such file"
	if isinstance(error, IsADirectoryError):
		return "is a folder, not a file"
	if isinstance(error, PermissionError):
		return "not allowed to read it"
	return error.strerror or str(error)


def open_binary(path):
	try:
		handle = open(path, "rb")
	except OSError as error:
		raise InputError(path, describe_os_error(error))
	return handle


def line_at(data, offset):
	return data.count(b"\n", 0, offset) + 1


def decode_utf8(data, where_for_offset):
	"""Text of ``data`` (UTF-8, a leading byte order mark dropped); ``where_for_offset(offset)``
	names the spot of a byte that is not UTF-8."""
	try:
		text = data.decode("utf-8")
	except UnicodeDecodeError as error:
		bad = data[error.start : error.start + 1].hex()
		raise InputError(
			where_for_offset(error.start), f"not UTF-8 text (byte 0x{bad}); save the file as UTF-8"
		)
	return text[1:] if text.startswith("\ufeff") else text


def read_json_file(path, what="file"):
	"""The parsed JSON of a small file (a pack, a field list), or InputError naming the line."""
	chunks, size = [], 0
	with open_binary(path) as handle:
		try:
			# In pieces: read(n) would set aside n bytes up front, even for a file of 2 KB.
			while size <= MAX_JSON_FILE_BYTES:
				chunk = handle.read(1 << 20)
				if not chunk:
					break
				chunks.append(chunk)
				size += len(chunk)
		except OSError as error:
			raise InputError(path, describe_os_error(error))
	data = b"".join(chunks)
	if size > MAX_JSON_FILE_BYTES:
		raise InputError(
			path, f"larger than {MAX_JSON_FILE_BYTES // 1_000_000} MB; a {what} is never that big"
		)
	text = decode_utf8(data, lambda offset: f"{path}:{line_at(data, offset)}")
	try:
		return json.loads(text)
	except json.JSONDecodeError as error:
		raise InputError(f"{path}:{error.lineno}", f"not valid JSON ({error.msg}, column {error.colno})")
	except RecursionError:
		raise InputError(path, "JSON nested too deeply")


def resolve_user_path(path, cwd=None, environ=None, fallbacks=()):
	"""The file a user meant by ``path`` when the process does not run where they stand.

	bench changes to ``sites/`` before it runs an app's command, so `packs/x.json` typed in the
	bench folder (or anywhere) is looked up from the shell's folder first (the shell exports it as
	PWD and bench keeps the environment), then in ``fallbacks`` (e.g. the bench folder, as Frappe's
	own import commands do), then where the process runs. Returns the first path that exists, or
	raises InputError listing where it looked.
	"""
	path = os.path.expanduser(path)
	if os.path.isabs(path):
		if not os.path.exists(path):
			raise InputError(path, "no such file")
		return path
	cwd = cwd or os.getcwd()
	environ = os.environ if environ is None else environ
	folders = []
	shell_folder = environ.get("PWD")
	if shell_folder and os.path.isabs(shell_folder):
		folders.append(shell_folder)
	folders.extend(os.path.join(cwd, folder) for folder in fallbacks)
	folders.append(cwd)
	seen = []
	for folder in folders:
		folder = os.path.normpath(folder)
		if folder in seen:
			continue
		seen.append(folder)
		candidate = os.path.join(folder, path)
		if os.path.exists(candidate):
			return candidate
	raise InputError(path, f"no such file (looked in {', '.join(seen)})")


def user_output_path(path, environ=None):
	"""Where to write a file the user named: a relative path is taken from the shell's folder
	(PWD), for the same reason as in resolve_user_path."""
	path = os.path.expanduser(path)
	environ = os.environ if environ is None else environ
	shell_folder = environ.get("PWD")
	if os.path.isabs(path) or not shell_folder or not os.path.isabs(shell_folder):
		return path
	return os.path.join(shell_folder, path)
