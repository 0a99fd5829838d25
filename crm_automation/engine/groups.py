"""Hold-out control groups and percentage splits: which group a document falls in, for good.

A document's place is a number in [0, 100) drawn from a SHA-256 of the rule's name and the
document's name (never Python's hash(), which changes from one process to the next), in steps of
0.01 (10,000 buckets). It is held out when that number is below the rule's Hold Out (%): raising or
lowering the share, or turning it off, moves only the threshold, never a document's number, so who
was held out before stays known. The split arm comes from a second number of the same pair with
another salt, so being held out and the arm taken are independent of each other.

Pure: the runner, the dry run and the offline simulator all call the same functions.
"""

import hashlib

from .conditions import is_empty_condition
from .fieldtypes import describe_value
from .i18n import _

BUCKETS = 10_000
HOLDOUT_SALT = "holdout"
SPLIT_SALT = "split"

BRANCH_MODE_CONDITIONS = "Conditions"
BRANCH_MODE_SPLIT = "Percentage Split"
BRANCH_MODES = (BRANCH_MODE_CONDITIONS, BRANCH_MODE_SPLIT)

# The group of a document that got the rule's actions where the rule has no split.
TREATED = "Treated"
HELD_OUT = "Held Out"


def position(rule_name, doc_name, salt=HOLDOUT_SALT):
	"""The document's fixed number in [0, 100), in steps of 100 / BUCKETS."""
	key = f"{salt}\x1f{rule_name}\x1f{doc_name}".encode()
	bucket = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % BUCKETS
	return bucket * 100 / BUCKETS


def is_held_out(rule_name, doc_name, holdout_percent):
	"""True when the document falls in the rule's hold-out. A document without a name yet (nothing
	to hash) is never held out."""
	if not holdout_percent or doc_name in (None, ""):
		return False
	return position(rule_name, doc_name, HOLDOUT_SALT) < holdout_percent


def split_arm(rule_name, doc_name, arms):
	"""The arm (name) of ``arms`` — (name, share) pairs whose shares add up to 100 — the document
	falls in; the first arm for a document without a name."""
	if not arms:
		return None
	if doc_name in (None, ""):
		return arms[0][0]
	point, upper = position(rule_name, doc_name, SPLIT_SALT), 0
	for name, share in arms:
		upper += share
		if point < upper:
			return name
	return arms[-1][0]


def group_of(rule_name, doc_name, holdout_percent=0, arms=()):
	"""The group a matched document is in: HELD_OUT, its split arm, or TREATED."""
	if is_held_out(rule_name, doc_name, holdout_percent):
		return HELD_OUT
	return split_arm(rule_name, doc_name, arms) or TREATED


def compile_groups(rule, branches, problems):
	"""(hold-out percent, split arms) of a rule, checked. ``branches`` are the rule's branch rows as
	written; each problem is added to ``problems`` with the path of the field to fix."""
	holdout = _holdout_percent(rule.get("holdout_percent"), problems)
	mode = rule.get("branch_mode") or BRANCH_MODE_CONDITIONS
	if mode not in BRANCH_MODES:
		problems.add(
			"branch_mode",
			_("{0} is not a way to choose branches (use Conditions or Percentage Split)").format(
				describe_value(mode)
			),
			value=mode,
		)
		return holdout, ()
	if mode != BRANCH_MODE_SPLIT:
		return holdout, ()
	return holdout, _split_arms(branches, problems)


def _holdout_percent(value, problems):
	if value in (None, ""):
		return 0
	if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 100:
		problems.add(
			"holdout_percent",
			_("{0} is not a hold-out share from 0 to 99 %").format(describe_value(value)),
			value=value,
		)
		return 0
	return value


def _split_arms(branches, problems):
	arms, total = [], 0
	for i, branch in enumerate(branches):
		path = f"branches[{i}]"
		name = (branch.get("branch_name") or "").strip()
		if branch.get("is_else"):
			problems.add(
				f"{path}.is_else",
				_("a percentage split has no else branch ({0})").format(describe_value(name)),
			)
			continue
		if not is_empty_condition(branch.get("conditions")):
			problems.add(
				f"{path}.conditions",
				_("branch {0} of a percentage split takes no conditions: its share decides").format(
					describe_value(name)
				),
			)
		share = branch.get("split_share")
		if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 100:
			problems.add(
				f"{path}.split_share",
				_("the share of branch {0} must be a percentage above 0, not {1}").format(
					describe_value(name), describe_value(share)
				),
				value=share,
			)
			continue
		arms.append((name, share))
		total += share
	if len(branches) < 2:
		problems.add("branches", _("a percentage split needs two branches or more"))
	elif len(arms) == len(branches) and abs(total - 100) > 1e-9:
		problems.add(
			"branches", _("the shares of a percentage split add up to {0} %, not 100 %").format(total)
		)
	return tuple(arms)
