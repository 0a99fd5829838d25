"""Synthetic Lead/Opportunity histories with planted patterns and noise, from a fixed seed.

Every planted pattern's support and observed count follow from the construction (``PLANTED``);
the noise is random but seeded, low-rate and spread over many values so that nothing in it reaches
the default thresholds.
"""

import datetime
import json
import random

START = datetime.datetime(2026, 9, 1, 8, 0, 0)
UNTIL = START + datetime.timedelta(days=91)
USERS = ["zhou@example.com", "li@example.com", "ana@example.com", "ben@example.com"]
TERRITORIES = ["North", "South", "East", "West"]
SOURCES = ["Exhibition", "Website", "Cold Calling", "Advertisement", "Campaign"]
INDUSTRIES = [f"Industry {n}" for n in range(8)]
NOISE_TEXTS = [f"Note about topic {chr(65 + n)}{chr(75 + n)}" for n in range(12)]
NOISE_SUBJECTS = [
	f"Regarding {word}"
	for word in (
		"pricing",
		"visit",
		"catalogue",
		"samples",
		"delivery",
		"terms",
		"support",
		"contract",
		"demo",
		"training",
		"invoice",
		"renewal",
	)
]
QUOTE_TEMPLATE = "Quote Follow Up"
CALL_BACK = "Call back to discuss the offer"


def planted(leads=400, opportunities=60):
	"""The figures the miner must find, for a history made by ``history(leads, opportunities)``."""
	north = leads // 4
	exhibition = leads // 5
	replied = sum(1 for i in range(leads) if is_replied(i))
	interested = sum(1 for i in range(leads) if is_interested(i))
	return {
		"assign_north": {"support": north * 92 // 100, "observed": north},
		"assign_south_team": {"support": north - 4, "observed": north},
		"exhibition_in_process": {"support": exhibition * 9 // 10, "observed": exhibition},
		"replied_quote": {"support": replied * 9 // 10, "observed": replied},
		"interested_call_back": {"support": interested * 9 // 10, "observed": interested},
		"opportunity_owner": {"support": opportunities * 9 // 10, "observed": opportunities},
		"automated": leads // 8,
	}


def is_replied(index):
	return index % 8 < 3


def is_interested(index):
	return not is_replied(index) and index % 10 >= 7


def _when(moment):
	return moment.strftime("%Y-%m-%d %H:%M:%S")


def history(leads=400, opportunities=60, seed=7):
	"""Events grouped by document, in time order within each: a list of dicts."""
	events = []
	for document in _leads(leads, random.Random(seed)):
		events.extend(document)
	for document in _opportunities(opportunities, random.Random(seed + 1)):
		events.extend(document)
	return events


def header(**extra):
	return {"type": "history", "version": 1, "since": _when(START), "until": _when(UNTIL), **extra}


def write_jsonl(path, events, **extra):
	with open(path, "w", encoding="utf-8") as handle:
		handle.write(json.dumps(header(**extra)) + "\n")
		for event in events:
			handle.write(json.dumps(event) + "\n")


def _share(index, count, share):
	"""The first ``share`` (a fraction) of ``count`` items, chosen by rank: exact counts."""
	return index < int(count * share + 1e-9)


def _leads(count, rng):
	figures = planted(count)
	ranks = {"north": 0, "south": 0, "exhibition": 0, "replied": 0, "interested": 0}
	automated_left = figures["automated"]
	step = datetime.timedelta(days=60) / count
	for i in range(count):
		name = f"CRM-LEAD-2026-{i + 1:05d}"
		created = START + step * i
		territory = TERRITORIES[i % 4]
		source = SOURCES[i % 5]
		values = {
			"territory": territory,
			"source": source,
			"industry": rng.choice(INDUSTRIES),
			"status": "Open",
			"qualification_status": "Unqualified",
		}
		owner = rng.choice(USERS)
		doc = []

		def add(kind, moment, **fields):
			doc.append({"type": kind, "doctype": "Lead", "name": name, "when": _when(moment), **fields})

		add("record", created, who=owner, doc=dict(values))
		after = lambda minutes: created + datetime.timedelta(minutes=minutes)  # noqa: E731

		# automation assigns some South leads first: not manual work, must not count
		if territory == "South" and automated_left:
			automated_left -= 1
			add(
				"assignment",
				after(1),
				who="Administrator",
				to="zhou@example.com",
				description="Assigned by automation rule Old rule",
			)
		if territory == "North":
			rank = ranks["north"]
			ranks["north"] += 1
			north = count // 4
			if rank < figures["assign_north"]["support"]:
				add("assignment", after(rng.randint(5, 50)), who="maria@example.com", to="zhou@example.com")
			elif rank < north - 3:
				add("assignment", after(rng.randint(5, 50)), who="maria@example.com", to=USERS[1 + rank % 3])
		elif territory == "South":
			# shared out in turn between Li and Ben, but for the last four
			rank = ranks["south"]
			ranks["south"] += 1
			to = "zhou@example.com" if rank >= count // 4 - 4 else USERS[1 + 2 * (rank % 2)]
			add("assignment", after(rng.randint(5, 50)), who="maria@example.com", to=to)
		else:
			add("assignment", after(rng.randint(5, 50)), who="maria@example.com", to=rng.choice(USERS))

		if source == "Exhibition":
			rank = ranks["exhibition"]
			ranks["exhibition"] += 1
			if rank < figures["exhibition_in_process"]["support"]:
				add(
					"change",
					after(rng.randint(10, 55)),
					who=rng.choice(USERS[:2]),
					field="qualification_status",
					old="Unqualified",
					new="In Process",
				)
			elif rank % 2:
				add(
					"change",
					after(30),
					who=USERS[2],
					field="qualification_status",
					old="Unqualified",
					new="Qualified",
				)
		elif rng.random() < 0.15:
			add(
				"change",
				after(rng.randint(60, 6000)),
				who=rng.choice(USERS),
				field="qualification_status",
				old="Unqualified",
				new=rng.choice(["In Process", "Qualified"]),
			)

		if rng.random() < 0.2:
			add(
				"change",
				after(rng.randint(60, 9000)),
				who=rng.choice(USERS),
				field="industry",
				old=values["industry"],
				new=rng.choice(INDUSTRIES),
				imported=rng.random() < 0.3,
			)

		if is_replied(i):
			rank = ranks["replied"]
			ranks["replied"] += 1
			moment = after(120)
			add("change", moment, who=rng.choice(USERS), field="status", old="Open", new="Replied")
			if rank < figures["replied_quote"]["support"]:
				add(
					"email",
					moment + datetime.timedelta(minutes=rng.randint(20, 110)),
					who=rng.choice(USERS),
					template=QUOTE_TEMPLATE,
					subject=f"Your quote {name}",
					to_field="email_id",
				)
			elif rank % 2:
				add(
					"email",
					moment + datetime.timedelta(minutes=45),
					who=USERS[3],
					subject=f"Question about {name}",
				)
		elif is_interested(i):
			rank = ranks["interested"]
			ranks["interested"] += 1
			moment = after(24 * 60)
			add("change", moment, who=rng.choice(USERS), field="status", old="Open", new="Interested")
			if rank < figures["interested_call_back"]["support"]:
				add(
					"todo",
					moment + datetime.timedelta(days=3, hours=rng.randint(0, 20)),
					who=USERS[0],
					to=USERS[0],
					description=f"<p>{CALL_BACK}</p>",
				)
			elif rank % 2:
				add(
					"todo",
					moment + datetime.timedelta(days=6),
					who=USERS[0],
					to=USERS[0],
					description="Send the brochure",
				)

		if rng.random() < 0.25:
			add(
				"email",
				after(rng.randint(200, 80000)),
				who=rng.choice(USERS),
				subject=rng.choice(NOISE_SUBJECTS),
			)
		if rng.random() < 0.25:
			add(
				"todo",
				after(rng.randint(200, 80000)),
				who=rng.choice(USERS),
				to=rng.choice(USERS),
				description=rng.choice(NOISE_TEXTS),
			)
		if rng.random() < 0.1:
			add(
				"todo",
				after(rng.randint(60, 600)),
				who="Administrator",
				to=rng.choice(USERS),
				description="Follow up",
				automated=True,
			)
		doc.sort(key=lambda event: (event["type"] != "record", event["when"]))
		yield doc


def _opportunities(count, rng):
	for i in range(count):
		name = f"CRM-OPP-2026-{i + 1:05d}"
		created = START + datetime.timedelta(hours=7 * i)
		owner_user = USERS[i % 4]
		doc = [
			{
				"type": "record",
				"doctype": "Opportunity",
				"name": name,
				"when": _when(created),
				"who": "maria@example.com",
				"doc": {
					"opportunity_owner": owner_user,
					"sales_stage": rng.choice(["Prospecting", "Qualification"]),
					"status": "Open",
				},
			}
		]
		if _share(i, count, 0.9):
			to = owner_user
		elif i % 2:
			to = USERS[(i + 1) % 4]
		else:
			to = None
		if to:
			doc.append(
				{
					"type": "assignment",
					"doctype": "Opportunity",
					"name": name,
					"when": _when(created + datetime.timedelta(minutes=15)),
					"who": "maria@example.com",
					"to": to,
				}
			)
		yield doc
