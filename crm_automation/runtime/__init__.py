"""Run a rule on a save: the runner, validate rules, the Workflow Rule cache, the values a rule
sees, the run log and occurrence claims, savepoints."""
