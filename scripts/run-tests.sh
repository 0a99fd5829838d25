#!/usr/bin/env bash
# The project's one test command (README, .ci/run):
#   tier 1: pytest over tests/ (engine, static contract checks) in a virtualenv this script makes
#           (.venv in the checkout) with the project and its test extras: `pip install -e .[test]`.
#   tier 2: CI=1 bench --site <site> run-tests --app crm_automation on a real bench, when one is
#           present (CRM_AUTOMATION_BENCH, else ~/frappe-bench, else /home/frappe/frappe-bench),
#           against this checkout; the desk in headless Chromium; the live tier (tests/live: web
#           server, worker, scheduler, SMTP, webhooks, through REST); fixtures through a client app;
#           an uninstall that must leave no trace. The bench and site are restored as they were found.
set -uo pipefail

CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
APP=crm_automation
say() { printf '\n==> %s\n' "$*"; }
shout() { printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n!!! %s\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' "$*"; }

passed=0
failed=0

# ------------------------------------------------------------------------------- test environment
# A machine with only Python is enough: the venv gets the project and every test dependency
# declared in pyproject.toml ([project.optional-dependencies] test). Re-installed only when
# pyproject.toml changed.
VENV="${CRM_AUTOMATION_VENV:-$CHECKOUT/.venv}"
BASE_PYTHON="${PYTHON:-python3}"
say "Test environment: $VENV (pip install -e '.[test]')"
if [ ! -x "$VENV/bin/python" ]; then
	"$BASE_PYTHON" -m venv "$VENV" || { shout "could not create a virtualenv at $VENV with $BASE_PYTHON"; echo "$APP: 0 passed, 1 failed"; exit 1; }
fi
stamp="$VENV/.crm_automation-installed"
wanted="$(sha256sum "$CHECKOUT/pyproject.toml" | cut -d' ' -f1) $CHECKOUT"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
	if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$CHECKOUT[test]"; then
		shout "could not install the project with its test dependencies (pip install -e '.[test]')"
		echo "$APP: 0 passed, 1 failed"
		exit 1
	fi
	echo "$wanted" > "$stamp"
fi
PYTHON="$VENV/bin/python"

# ------------------------------------------------------------------------------- tier 1
say "Tier 1: pytest (engine and static contract checks)"
tier1_log="$(mktemp)"
(cd "$CHECKOUT" && "$PYTHON" -m pytest tests -q -p no:cacheprovider --ignore=tests/browser --ignore=tests/live) 2>&1 | tee "$tier1_log"
tier1=${PIPESTATUS[0]}
if [ "$tier1" -eq 5 ]; then
	shout "Tier 1 collected no tests: that is a broken test suite, not a pass"
	tier1=1
fi
t1_passed=$(grep -Eo '[0-9]+ passed' "$tier1_log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
t1_failed=$(grep -Eo '[0-9]+ (failed|error|errors)' "$tier1_log" | awk '{s+=$1} END {print s+0}')
passed=$((passed + t1_passed))
failed=$((failed + t1_failed))
[ "$tier1" -ne 0 ] && [ "$t1_failed" -eq 0 ] && failed=$((failed + 1))
rm -f "$tier1_log"

# ------------------------------------------------------------------------------- tier 2
# A bench: the one named, else where `bench init` usually puts one, else where
# shared/bench/build-bench.sh builds it.
BENCH_DIR="${CRM_AUTOMATION_BENCH:-}"
if [ -z "$BENCH_DIR" ]; then
	for candidate in "$HOME/frappe-bench" /home/frappe/frappe-bench; do
		if [ -d "$candidate/apps/frappe" ]; then BENCH_DIR="$candidate"; break; fi
	done
fi
if [ -z "$BENCH_DIR" ] || [ ! -d "$BENCH_DIR/apps/frappe" ]; then
	shout "Tier 2 (integration on a real site) SKIPPED: no bench at ${BENCH_DIR:-$HOME/frappe-bench or /home/frappe/frappe-bench} (set CRM_AUTOMATION_BENCH, or build one with shared/bench/build-bench.sh). Nothing that touches Frappe was tested."
	echo "$APP: $passed passed, $failed failed"
	[ "$tier1" -eq 0 ] && exit 0 || exit 1
fi

BENCH_DIR="$(cd "$BENCH_DIR" && pwd -P)"
OWNER="$(stat -c %U "$BENCH_DIR")"
as_owner() {
	if [ "$(id -un)" = "$OWNER" ]; then
		(cd "$BENCH_DIR" && env "$@")
	else
		runuser -u "$OWNER" -- env -C "$BENCH_DIR" HOME="$(getent passwd "$OWNER" | cut -d: -f6)" PATH="$PATH" "$@"
	fi
}
bench_cmd() { as_owner bench "$@"; }

SITE="${CRM_AUTOMATION_SITE:-}"
if [ -z "$SITE" ]; then
	SITE="$(cd "$BENCH_DIR/sites" && python3 -c 'import json; print(json.load(open("common_site_config.json")).get("default_site", ""))' 2>/dev/null)"
	[ -n "$SITE" ] && [ ! -f "$BENCH_DIR/sites/$SITE/site_config.json" ] && SITE=""
fi
if [ -z "$SITE" ]; then
	SITE="$(cd "$BENCH_DIR/sites" && for d in */; do [ -f "$d/site_config.json" ] && echo "${d%/}"; done | sort | head -1)"
fi
if [ -z "$SITE" ]; then
	shout "Tier 2 FAILED: the bench at $BENCH_DIR has no site (set CRM_AUTOMATION_SITE)"
	echo "$APP: $passed passed, $((failed + 1)) failed"
	exit 1
fi
say "Tier 2: bench $BENCH_DIR (owner $OWNER), site $SITE, checkout $CHECKOUT"

started_services=()
state_dir="$(mktemp -d)"
chmod 755 "$state_dir"
cp "$BENCH_DIR/sites/apps.txt" "$state_dir/apps.txt"
cp "$BENCH_DIR/sites/$SITE/site_config.json" "$state_dir/site_config.json"
site_packages="$(as_owner env/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
pth="$site_packages/__crm_automation_under_test.pth"
app_link="$BENCH_DIR/apps/$APP"
assets_link="$BENCH_DIR/sites/assets/$APP"
moved_app=""
moved_assets=""
original_app_link="$(readlink "$app_link" 2>/dev/null || true)"
original_assets_link="$(readlink "$assets_link" 2>/dev/null || true)"

restore_bench() {
	say "Restoring the bench as it was found"
	if [ -n "${reinstall_after:-}" ]; then
		if ! bench_cmd --site "$SITE" install-app "$APP" >"$state_dir/reinstall.log" 2>&1; then
			shout "could not reinstall $APP on $SITE as it was found:"
			tail -20 "$state_dir/reinstall.log"
		fi
	fi
	rm -f "$pth"
	[ -L "$app_link" ] && rm -f "$app_link"
	[ -n "$moved_app" ] && mv "$moved_app" "$app_link"
	[ -n "$original_app_link" ] && ln -s "$original_app_link" "$app_link"
	[ -L "$assets_link" ] && rm -f "$assets_link"
	[ -n "$moved_assets" ] && mv "$moved_assets" "$assets_link"
	[ -n "$original_assets_link" ] && ln -s "$original_assets_link" "$assets_link"
	cp "$state_dir/apps.txt" "$BENCH_DIR/sites/apps.txt"
	cp "$state_dir/site_config.json" "$BENCH_DIR/sites/$SITE/site_config.json"
	for service in "${started_services[@]}"; do
		case "$service" in
			mariadb)
				# Debian's stop authenticates with debian.cnf, which fails once root has a password:
				# then a clean SIGTERM through the pid file.
				service mariadb stop >/dev/null 2>&1
				if pgrep -x mariadbd >/dev/null 2>&1 && [ -f /run/mysqld/mysqld.pid ]; then
					kill -TERM "$(cat /run/mysqld/mysqld.pid)" 2>/dev/null
				fi
				for _ in $(seq 1 30); do pgrep -x mariadbd >/dev/null 2>&1 || break; sleep 1; done
				;;
			redis:*) redis-cli -p "${service#redis:}" shutdown nosave >/dev/null 2>&1 ;;
		esac
	done
	rm -rf "$state_dir"
}
trap restore_bench EXIT

# MariaDB and Redis: start what is down, and stop it again afterwards.
if ! mysqladmin ping >/dev/null 2>&1; then
	say "Starting MariaDB"
	service mariadb start >/dev/null 2>&1 || (mysqld_safe >/dev/null 2>&1 &)
	for _ in $(seq 1 30); do mysqladmin ping >/dev/null 2>&1 && break; sleep 1; done
	started_services+=(mariadb)
fi
for conf in redis_cache redis_queue; do
	port="$(grep -E '^port' "$BENCH_DIR/config/$conf.conf" | awk '{print $2}')"
	if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
		say "Starting $conf on port $port"
		as_owner redis-server "config/$conf.conf" --daemonize yes >/dev/null
		for _ in $(seq 1 20); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.5; done
		started_services+=("redis:$port")
	fi
done

# The checkout under test becomes the bench's app: importable (.pth), listed, its assets linked.
if [ -e "$app_link" ] && [ ! -L "$app_link" ]; then
	moved_app="$BENCH_DIR/apps/.$APP.moved-aside.$$"
	mv "$app_link" "$moved_app"
elif [ -L "$app_link" ]; then
	rm -f "$app_link"
fi
ln -s "$CHECKOUT" "$app_link"
if [ -e "$assets_link" ] && [ ! -L "$assets_link" ]; then
	moved_assets="$BENCH_DIR/sites/assets/.$APP.moved-aside.$$"
	mv "$assets_link" "$moved_assets"
fi
rm -f "$assets_link"
ln -s "$CHECKOUT/$APP/public" "$assets_link"
echo "$CHECKOUT" > "$pth"
# The app's runtime dependencies the bench env lacks (statsmodels for the Rule Outcome report):
# `bench get-app` would pip install them into env, but this script leaves the bench as it found it.
# They go into a directory of the checkout instead, installed by the bench env's own pip (its
# Python version) at the versions env already has for anything shared, and onto the path by a
# second line of the .pth, removed with it. Installed again only when something is missing.
deps_dir="$CHECKOUT/.bench-deps"
mkdir -p "$deps_dir" && [ "$(id -u)" = 0 ] && chown "$OWNER" "$deps_dir"
missing_deps="$(as_owner env/bin/python "$CHECKOUT/tests/bench/missing_deps.py" "$CHECKOUT/pyproject.toml" "$deps_dir")"
if [ -n "$missing_deps" ]; then
	say "Installing the app's dependencies the bench env lacks into $deps_dir: $missing_deps"
	as_owner env/bin/python -m pip freeze --exclude-editable 2>/dev/null | grep -v ' @ ' > "$state_dir/constraints.txt"
	# shellcheck disable=SC2086
	if ! as_owner env/bin/python -m pip install --quiet --disable-pip-version-check --upgrade --target "$deps_dir" \
		-c "$state_dir/constraints.txt" $missing_deps; then
		shout "could not install $missing_deps for the bench into $deps_dir"
	fi
fi
echo "$deps_dir" >> "$pth"
grep -qx "$APP" "$BENCH_DIR/sites/apps.txt" || printf '\n%s\n' "$APP" >> "$BENCH_DIR/sites/apps.txt"
sed -i '/^$/d' "$BENCH_DIR/sites/apps.txt"

# What the tests need from the site, restored afterwards with the rest of site_config.json:
# allow_tests, and outgoing mail keys as Frappe's own CI sets them (Frappe's User test records send
# a welcome mail, and with no outgoing account EmailAccount.default_sender fails; tests mute email,
# so nothing is sent).
for key_value in "allow_tests true" "mail_server localhost" "mail_port 2525" "mail_login test@example.com" \
	"mail_password test" "auto_email_id test@example.com"; do
	# shellcheck disable=SC2086
	bench_cmd --site "$SITE" set-config -p $key_value >/dev/null 2>&1 || bench_cmd --site "$SITE" set-config $key_value >/dev/null
done
# redis keeps the module map per site ("app_modules"); one cached before this app was listed makes
# install-app sync none of its doctypes.
bench_cmd --site "$SITE" clear-cache >/dev/null

half_install_cleanup() {
	as_owner env -C "$BENCH_DIR/sites" ../env/bin/python "$CHECKOUT/tests/bench/remove_half_install.py" "$SITE"
}

installed_before=""
bench_cmd --site "$SITE" list-apps 2>/dev/null | grep -q "^$APP" && installed_before=1
if [ -n "$installed_before" ]; then
	say "$APP was already installed on $SITE: migrating it to this checkout"
	bench_cmd --site "$SITE" migrate --skip-search-index >/dev/null || { shout "migrate failed"; echo "$APP: $passed passed, $((failed + 1)) failed"; exit 1; }
	reinstall_after=""
else
	# An earlier run that failed half-way may have left an Installed Applications row, the Module
	# Def or the role behind: install-app would then fail as a duplicate.
	half_install_cleanup || { shout "could not clean what an earlier failed install left on $SITE"; echo "$APP: $passed passed, $((failed + 1)) failed"; exit 1; }
	say "Installing $APP on $SITE"
	if ! bench_cmd --site "$SITE" install-app "$APP"; then
		shout "install-app failed: removing what it left on $SITE"
		half_install_cleanup
		echo "$APP: $passed passed, $((failed + 1)) failed"
		exit 1
	fi
	if ! bench_cmd --site "$SITE" execute frappe.db.exists --args "['DocType', 'Workflow Rule']" 2>/dev/null | grep -q "Workflow Rule"; then
		shout "install-app did not create the app's doctypes on $SITE: removing what it left"
		half_install_cleanup
		echo "$APP: $passed passed, $((failed + 1)) failed"
		exit 1
	fi
fi
bench_cmd --site "$SITE" clear-cache >/dev/null

tier2_log="$state_dir/tier2.log"
say "Tier 2: CI=1 bench --site $SITE run-tests --app $APP"
as_owner CI=1 bench --site "$SITE" run-tests --app "$APP" 2>&1 | tee "$tier2_log"
tier2=${PIPESTATUS[0]}
ran=$(grep -Eo '^Ran [0-9]+ test' "$tier2_log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
bad=$(grep -Eo '^FAILED \((failures|errors)=[0-9]+(, (failures|errors)=[0-9]+)?' "$tier2_log" | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}')
if [ "$ran" -eq 0 ]; then
	shout "Tier 2 ran no test"
	tier2=1
	bad=$((bad + 1))
fi
[ "$tier2" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
passed=$((passed + ran - (bad < ran ? bad : ran)))
failed=$((failed + bad))

say "Tier 2: the desk in headless Chromium against bench serve"
desk_port=8765
desk_password="desk-$(date +%s)-$RANDOM"
desk_log="$state_dir/serve.log"
# Debian's Chromium and its driver (no browser download: only the package registry is reachable).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "Installing Debian's chromium and chromium-driver for the desk check"
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei) >"$state_dir/apt.log" 2>&1 \
			|| { tail -5 "$state_dir/apt.log"; }
	fi
fi
# The zh screenshots need a CJK font (without one the checks still pass, the pictures show boxes).
if [ -x /usr/bin/chromium ] && ! dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-zenhei >/dev/null 2>&1 || echo "could not install fonts-wqy-zenhei (zh screenshots will show boxes)"
fi
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
	shout "the desk check needs /usr/bin/chromium and /usr/bin/chromedriver: run, as root, apt-get install chromium chromium-driver"
fi
bench_cmd --site "$SITE" execute crm_automation.tests.desk.setup_desk_check --kwargs "{'password': '$desk_password'}" >/dev/null
bench_cmd --site "$SITE" execute crm_automation.tests.desk_languages.setup_desk_languages --kwargs "{'password': '$desk_password'}" >/dev/null
as_owner bench --site "$SITE" serve --port "$desk_port" --noreload >"$desk_log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 60); do curl -fs "http://127.0.0.1:$desk_port/api/method/ping" >/dev/null 2>&1 && break; sleep 1; done
desk_out="$state_dir/desk.log"
(cd "$CHECKOUT" && CRM_AUTOMATION_DESK_URL="http://127.0.0.1:$desk_port" CRM_AUTOMATION_DESK_PASSWORD="$desk_password" \
	"$PYTHON" -m pytest tests/browser -q -p no:cacheprovider) 2>&1 | tee "$desk_out"
desk=${PIPESTATUS[0]}
pkill -P "$serve_pid" >/dev/null 2>&1; kill "$serve_pid" >/dev/null 2>&1
pkill -f "serve --port $desk_port" >/dev/null 2>&1
bench_cmd --site "$SITE" execute crm_automation.tests.desk_languages.teardown_desk_languages >/dev/null
bench_cmd --site "$SITE" execute crm_automation.tests.desk.teardown_desk_check >/dev/null
d_passed=$(grep -Eo '[0-9]+ passed' "$desk_out" | tail -1 | grep -Eo '[0-9]+' || echo 0)
d_failed=$(grep -Eo '[0-9]+ (failed|error|errors)' "$desk_out" | awk '{s+=$1} END {print s+0}')
[ "$desk" -ne 0 ] && [ "$d_failed" -eq 0 ] && d_failed=1
[ "$d_passed" -eq 0 ] && [ "$d_failed" -eq 0 ] && { shout "the desk check ran no test"; d_failed=1; }
passed=$((passed + d_passed))
failed=$((failed + d_failed))
[ "$d_failed" -ne 0 ] && tier2=1

say "Tier 2: the live stack: web server, one worker, the scheduler, SMTP and a webhook receiver, through REST"
# tests/live starts `bench serve`, `bench worker` and `bench schedule` (each in its own process group,
# stopped by its id), a local SMTP server and webhook receiver, and puts the site back as it was.
# SIGINT on overrun, so its own teardown still runs.
live_out="$state_dir/live.log"
(cd "$CHECKOUT" && CRM_AUTOMATION_LIVE_SITE="$SITE" CRM_AUTOMATION_BENCH="$BENCH_DIR" \
	timeout -s INT -k 120 900 "$PYTHON" -m pytest tests/live -q -p no:cacheprovider) 2>&1 | tee "$live_out"
live=${PIPESTATUS[0]}
l_passed=$(grep -Eo '[0-9]+ passed' "$live_out" | tail -1 | grep -Eo '[0-9]+' || echo 0)
l_failed=$(grep -Eo '[0-9]+ (failed|error|errors)' "$live_out" | awk '{s+=$1} END {print s+0}')
[ "$live" -ne 0 ] && [ "$l_failed" -eq 0 ] && l_failed=1
if [ "$l_passed" -eq 0 ] && [ "$l_failed" -eq 0 ]; then
	shout "the live tier ran no check (see above): nothing was proved on a running site"
	l_failed=1
elif [ "$l_failed" -ne 0 ]; then
	shout "the live tier failed: $l_failed of its checks (a stack that could not start counts as a failure)"
fi
passed=$((passed + l_passed))
failed=$((failed + l_failed))
[ "$l_failed" -ne 0 ] && tier2=1

say "Tier 2: rules shipped as fixtures of a consultant's own client app"
client=crm_rules_client
client_dir="$state_dir/$client"
mkdir -p "$client_dir/$client/$client" "$client_dir/$client/fixtures"
printf '__version__ = "0.0.1"\n' > "$client_dir/$client/__init__.py"
touch "$client_dir/$client/$client/__init__.py"
printf 'CRM Rules Client\n' > "$client_dir/$client/modules.txt"
printf '[pre_model_sync]\n[post_model_sync]\n' > "$client_dir/$client/patches.txt"
cat > "$client_dir/$client/hooks.py" <<HOOKS
app_name = "$client"
app_title = "CRM Rules Client"
app_publisher = "a consultant"
app_description = "A client's rules, shipped as fixtures"
app_license = "MIT"
required_apps = ["crm_automation"]
fixtures = [{"dt": "Workflow Rule", "filters": [["name", "like", "_Fixture%"]]}]
HOOKS
chmod -R a+rwX "$client_dir"
ln -sfn "$client_dir" "$BENCH_DIR/apps/$client"
echo "$client_dir" > "$site_packages/__crm_rules_client_under_test.pth"
echo "$client" >> "$BENCH_DIR/sites/apps.txt"
fixtures_ok=0
if bench_cmd --site "$SITE" install-app "$client" >/dev/null 2>&1 \
	&& bench_cmd --site "$SITE" execute crm_automation.tests.fixtures_check.create_rule \
	&& bench_cmd --site "$SITE" export-fixtures --app "$client" >/dev/null 2>&1 \
	&& [ -s "$client_dir/$client/fixtures/workflow_rule.json" ] \
	&& bench_cmd --site "$SITE" execute crm_automation.tests.fixtures_check.delete_rule \
	&& bench_cmd --site "$SITE" migrate --skip-search-index >/dev/null 2>&1 \
	&& bench_cmd --site "$SITE" execute crm_automation.tests.fixtures_check.verify; then
	fixtures_ok=1
fi
bench_cmd --site "$SITE" uninstall-app "$client" --yes --no-backup --force >/dev/null 2>&1
rm -f "$BENCH_DIR/apps/$client" "$site_packages/__crm_rules_client_under_test.pth"
sed -i "/^$client\$/d" "$BENCH_DIR/sites/apps.txt"
if [ "$fixtures_ok" -eq 1 ]; then
	passed=$((passed + 1))
else
	shout "the fixtures round trip through a client app failed"
	failed=$((failed + 1))
	tier2=1
fi

say "Tier 2: uninstall must leave no trace"
if bench_cmd --site "$SITE" uninstall-app "$APP" --yes --no-backup --force >/dev/null 2>&1 \
	&& (cd "$BENCH_DIR/sites" && as_owner env -C "$BENCH_DIR/sites" ../env/bin/python "$CHECKOUT/tests/bench/verify_uninstalled.py" "$SITE"); then
	passed=$((passed + 1))
else
	shout "uninstall left traces or failed"
	failed=$((failed + 1))
	tier2=1
fi
[ -n "$installed_before" ] && reinstall_after=1

echo
echo "crm_automation: $passed passed, $failed failed"
[ "$tier1" -eq 0 ] && [ "$tier2" -eq 0 ]
