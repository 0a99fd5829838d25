"""bench --site S crm-automation export-pack | import-pack | test-rule"""

# Imports inside the commands are on purpose: bench loads this module for every bench command, so
# each command loads only what it runs.
import json
import sys

import click
from frappe.commands import get_site, pass_context


def _connect(context):
	import frappe

	frappe.init(site=get_site(context))
	frappe.connect()
	frappe.set_user("Administrator")
	return frappe


@click.group("crm-automation")
def crm_automation():
	"""crm_automation: rule packs and dry runs."""


@crm_automation.command("export-pack")
@click.option("--output", "-o", help="write the pack here instead of standard output")
@click.option("--name", help="the pack's name")
@pass_context
def export_pack(context, output=None, name=None):
	"""Export every Workflow Rule, Lead Score Rule and Escalation Policy of the site as a pack."""
	frappe = _connect(context)
	try:
		from crm_automation.packs import export_pack as build

		text = json.dumps(build(name=name), indent=1, ensure_ascii=False, default=str)
		if output:
			from crm_automation.offline.input_files import user_output_path

			output = user_output_path(output)  # bench runs this from sites/, not where the user is
			with open(output, "w") as handle:
				handle.write(text + "\n")
			click.echo(f"written to {output}")
		else:
			click.echo(text)
	finally:
		frappe.destroy()


@crm_automation.command("import-pack")
@click.argument("path")
@click.option("--dry-run", is_flag=True, help="check and report, write nothing")
@click.option("--enable", is_flag=True, help="enable the imported rules (new rules are disabled otherwise)")
@click.option(
	"--secret",
	"secrets",
	multiple=True,
	metavar="RULE:ROW:FIELD=VALUE",
	help="fill in a webhook secret or headers the pack leaves out, e.g. --secret 'Notify ERP:2:secret=s3cret'; "
	"asked for on a terminal when not given",
)
@pass_context
def import_pack(context, path, dry_run=False, enable=False, secrets=()):
	"""Import a pack: checked completely first, then all or nothing; importing again updates by name."""
	data = _read_pack(path)
	frappe = _connect(context)
	try:
		from crm_automation.packs import import_pack as run

		filled = _secrets_for(data, secrets)
		report = run(data, dry_run=dry_run, enable=enable, secrets=filled)
		if report["problems"]:
			click.echo(f"{len(report['problems'])} problem(s), nothing imported:", err=True)
			for problem in report["problems"]:
				click.echo(f"  {problem}", err=True)
			sys.exit(2)  # bad input, as the offline CLI: one line per problem, exit code 2
		if not dry_run:
			frappe.db.commit()
		for key in ("created", "updated", "unchanged"):
			for line in report[key]:
				click.echo(f"{key}: {line}")
		for key in report.get("to_fill") or []:
			click.echo(f"to be filled in (the rule cannot be enabled until it is): {key}")
		click.echo(
			("dry run, nothing written: " if dry_run else "")
			+ ", ".join(f"{len(report[k])} {k}" for k in ("created", "updated", "unchanged"))
		)
	finally:
		frappe.destroy()


def _read_pack(path):
	"""The pack the user means by ``path``. bench runs app commands from sites/, so a relative path
	is looked up from the folder the user typed the command in first (the shell's PWD, which bench
	passes on), then the bench folder (as Frappe's own import commands do), then sites/. A file that
	cannot be read is refused with one line and exit code 2, before connecting to the site."""
	from crm_automation.offline.input_files import InputError, read_json_file, resolve_user_path

	try:
		return read_json_file(resolve_user_path(path, fallbacks=("..",)), "pack")
	except InputError as error:
		click.echo(str(error), err=True)
		sys.exit(2)


def _secrets_for(data, given):
	"""--secret values by placeholder key. The key is matched against the pack's own keys (a rule
	name may contain ':' or '='), then the rest after '=' is the value. On a terminal, the ones not
	given are asked for, hidden; an empty answer leaves one to be filled in later."""
	from crm_automation.engine.packs import secret_placeholders

	keys = [p["key"] for p in secret_placeholders(data)]
	secrets = {}
	for text in given:
		key = next((k for k in sorted(keys, key=len, reverse=True) if text.startswith(k + "=")), None)
		if key is None:
			key, _sep, value = text.partition("=")
		else:
			value = text[len(key) + 1 :]
		secrets[key] = value
	if sys.stdin.isatty():
		for key in keys:
			if key not in secrets:
				answer = click.prompt(
					f"{key} (Enter to leave it to be filled in)",
					default="",
					hide_input=True,
					show_default=False,
				)
				if answer:
					secrets[key] = answer
	return secrets


@crm_automation.command("test-rule")
@click.argument("rule")
@click.option("--doc", help="the document to test on")
@click.option("--last", type=int, help="test on the latest N documents of the rule's type")
@pass_context
def test_rule(context, rule, doc=None, last=None):
	"""Dry run: what a rule would do, with nothing written but a Dry Run log entry."""
	frappe = _connect(context)
	try:
		from crm_automation.dry_run import dry_run, format_dry_run

		result = dry_run(rule, names=[doc] if doc else None, last=last or (None if doc else 1))
		frappe.db.commit()  # only the Dry Run log entries
		click.echo(format_dry_run(result))
	finally:
		frappe.destroy()


@crm_automation.command("export-history")
@click.option("--output", "-o", required=True, help="the history file to write (JSON lines)")
@click.option("--days", default=90, type=click.IntRange(1, 3660), help="how far back (default 90 days)")
@click.option(
	"--doctype",
	"doctypes",
	multiple=True,
	help="a document type to export (repeatable; default Lead, Opportunity, Sales Order, Issue)",
)
@pass_context
def export_history(context, output, days=90, doctypes=()):
	"""Export the site's history (field changes, assignments, e-mails, comments) for `crm-automation suggest`."""
	import os

	if not os.path.isabs(output) and os.path.isabs(os.environ.get("PWD") or ""):
		# bench runs app commands from sites/: write where the user typed the command
		output = os.path.join(os.environ["PWD"], output)
	frappe = _connect(context)
	try:
		from crm_automation.mining.history_export import write_history_file

		try:
			count = write_history_file(output, list(doctypes) or None, days)
		except (frappe.ValidationError, OSError) as error:
			click.echo(frappe.utils.strip_html(str(error)), err=True)
			sys.exit(2)
		click.echo(f"{count} events written to {output}")
	finally:
		frappe.destroy()


commands = [crm_automation]
