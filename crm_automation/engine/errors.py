"""Typed errors raised while compiling rules.

Every problem carries the path inside the rule (``conditions.all[2]``), the field, the offending
value and a message, so the desk, the pack importer and the simulator can all point at the exact spot.
"""


class RuleProblem:
	__slots__ = ("field", "message", "path", "value")

	def __init__(self, path, message, field=None, value=None):
		self.path = path
		self.message = message
		self.field = field
		self.value = value

	def __str__(self):
		return f"{self.path}: {self.message}" if self.path else self.message

	def as_dict(self):
		return {"path": self.path, "field": self.field, "value": self.value, "message": self.message}


class RuleError(ValueError):
	"""One or more problems found while compiling a rule; ``problems`` lists them all."""

	def __init__(self, problems):
		if isinstance(problems, RuleProblem):
			problems = [problems]
		self.problems = list(problems)
		super().__init__("; ".join(str(p) for p in self.problems))

	@property
	def first(self):
		return self.problems[0]


class ProblemCollector:
	"""Gathers problems so one compile reports all of them instead of stopping at the first."""

	def __init__(self):
		self.problems = []

	def add(self, path, message, field=None, value=None):
		self.problems.append(RuleProblem(path, message, field, value))

	def extend(self, error):
		self.problems.extend(error.problems)

	def raise_if_any(self):
		if self.problems:
			raise RuleError(self.problems)

	def __bool__(self):
		return bool(self.problems)
