"""What the user typed, read into what the API takes: -e variables, durations and times, batch
plans, the fields of a job template, and the API's request models (an invalid value ends the
command with one line naming the option, exit 2)."""

from __future__ import annotations

import datetime as dt
import json

from runner_service.cli.options import TARGET_OPTIONS
from runner_service.cli.output import fail

# Option names of the request models' fields, for messages about invalid values (others: --field-name).
OPTION_NAMES = {'playbook': 'PLAYBOOK', 'extra_vars': '-e', 'depends_on': '--after', 'max_retries': '--retries',
                'max_fail_percentage': '--max-fail', 'name': 'NAME', 'kind': '--cron/--every/--at',
                'expression': '--cron/--every/--at', 'timezone': '--tz', 'misfire_grace_seconds': '--misfire-grace',
                'jitter_seconds': '--jitter', 'slots': 'SLOTS', 'duration_seconds': '--duration'}


# The longest secret file read: a private key or a certificate chain is a few KiB.
MAX_SECRET_FILE = 65536


def read_secret(path: str, option: str) -> str:
    """A secret's text from a file the user names (never the command line); one line and exit 2 if
    it cannot be read, is not text, is empty or larger than MAX_SECRET_FILE."""
    try:
        with open(path, encoding='utf-8') as handle:
            text = handle.read(MAX_SECRET_FILE + 1)
    except OSError as exc:
        fail('%s %s: %s' % (option, path, exc.strerror or exc))
    except UnicodeDecodeError:
        fail('%s %s: not text' % (option, path))
    if len(text) > MAX_SECRET_FILE:
        fail('%s %s: larger than %d bytes' % (option, path, MAX_SECRET_FILE))
    if not text.strip():
        fail('%s %s: empty' % (option, path))
    return text


def parse_subscriptions(pairs: list[str]) -> dict[str, list[str]]:
    """--notify failed=ops-mail --notify failed=ops-hook as {'failed': ['ops-mail', 'ops-hook']}."""
    notify: dict[str, list[str]] = {}
    for pair in pairs:
        event, _, name = pair.partition('=')
        if not event or not name:
            fail('--notify %s: give EVENT=NOTIFIER, e.g. failed=ops-mail' % pair[:100])
        notify.setdefault(event, []).append(name)
    return notify


def parse_extra_vars(items: list[str]) -> dict:
    """-e values merged left to right: key=value (the value read as JSON when it is JSON, else
    text) or @file (a JSON or YAML mapping)."""
    merged: dict = {}
    for item in items:
        if item.startswith('@'):
            merged.update(_vars_file(item[1:]))
            continue
        key, separator, value = item.partition('=')
        if not separator or not key:
            fail('-e %r: give key=value or @file.json|@file.yml' % item)
        try:
            merged[key] = json.loads(value)
        except ValueError:
            merged[key] = value
    return merged


def _vars_file(path: str) -> dict:
    import yaml
    try:
        with open(path, encoding='utf-8') as handle:
            text = handle.read()
    except OSError as exc:
        fail('-e @%s: %s' % (path, exc.strerror or exc))
    try:
        values = json.loads(text) if path.endswith('.json') else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = 'JSON' if path.endswith('.json') else 'YAML'
        fail('-e @%s: not valid %s: %s' % (path, kind, ' '.join(str(exc).split())))
    if not isinstance(values, dict):
        fail('-e @%s: not a mapping of variable names to values' % path)
    return values


def parse_seconds(text: str, option: str) -> int:
    from dbfleet.durations import TimeSpecError, parse_duration
    if text.strip().isdigit():
        return int(text)
    try:
        return int(parse_duration(text).total_seconds())
    except TimeSpecError as exc:
        fail('%s: %s' % (option, exc))


def parse_time(text: str, option: str, after: dt.datetime | None = None) -> dt.datetime:
    """A time the user wrote: ISO (naive means UTC), a duration from now (2h), or HH:MM: the next
    such local time after `after` (default now)."""
    from dbfleet.durations import TimeSpecError, parse_point_in_time
    hours, colon, minutes = text.strip().partition(':')
    if colon and hours.isdigit() and minutes.isdigit() and len(minutes) == 2:
        now = (after or dt.datetime.now(dt.timezone.utc)).astimezone().replace(tzinfo=None)
        try:
            wall = now.replace(hour=int(hours), minute=int(minutes), second=0, microsecond=0)
        except ValueError:
            fail('%s: %r is not a time of day (HH:MM)' % (option, text))
        return (wall if wall > now else wall + dt.timedelta(days=1)).astimezone()
    try:
        return parse_point_in_time(text)
    except TimeSpecError as exc:
        fail('%s: %s' % (option, exc))


def invalid_message(exc, option: str | None = None, whole: str = '--inventory/--tags') -> str:
    """A pydantic ValidationError of a request model as one line, in the command's option names
    (`whole`: the options a rule over several fields is about)."""
    parts = []
    for error in exc.errors()[:5]:
        field = error['loc'][0] if error['loc'] else None
        name = option or (OPTION_NAMES.get(field, '--%s' % str(field).replace('_', '-')) if field is not None
                          else whole)
        parts.append('%s: %s' % (name, error['msg'].removeprefix('Value error, ')))
    return '; '.join(parts)


def request_model(model, whole: str = '--inventory/--tags', **fields):
    """The API's request model from the options given (None ones left out, so they keep the
    model's defaults, or stay unset); an invalid value ends the command with one line."""
    from pydantic import ValidationError
    try:
        return model(**{key: value for key, value in fields.items() if value is not None})
    except ValidationError as exc:
        fail(invalid_message(exc, whole=whole))


def parse_rolling(text: str) -> list:
    """--rolling 1,5,20% as BatchPlan.rolling: [1, 5, '20%']."""
    return [int(part) if part.strip().isdigit() else part.strip() for part in text.split(',')]


def batch_plan(options: dict, window_end: str | None = None, base: dict | None = None):
    """The BatchPlan of the plan options (PLAN_OPTIONS, --window-end) over `base` (a schedule's
    current plan: --lanes replaces its rolling batches, --rolling its lanes); None if none given."""
    from runner_service.schemas import BatchPlan
    max_fail = options.get('max_fail')
    if max_fail is not None and not max_fail.strip().rstrip('%').isdigit():
        fail('--max-fail: %r is not a percentage (0-100)' % max_fail)
    given = {'lanes': options.get('lanes'),
             'rolling': parse_rolling(options['rolling']) if options.get('rolling') else None,
             'max_fail_percentage': int(max_fail.strip().rstrip('%')) if max_fail is not None else None,
             'pool': options.get('pool'), 'window_end': parse_time(window_end, '--window-end') if window_end else None}
    given = {key: value for key, value in given.items() if value is not None}
    if not given:
        return None
    plan = {key: value for key, value in (base or {}).items() if value is not None}
    if 'lanes' in given:
        plan.pop('rolling', None)
        plan.pop('max_fail_percentage', None)
    if 'rolling' in given:
        plan.pop('lanes', None)
    return request_model(BatchPlan, '--lanes/--rolling', **{**plan, **given})


def template_fields(options: dict, window_end: str | None = None, base_plan: dict | None = None) -> dict:
    """JobTemplate fields from the options `jobs launch` and `schedules create|update` share
    (TARGET_OPTIONS, VARS_OPTIONS, PLAN_OPTIONS): -e merged, the plan built; those not given left out."""
    fields = {name: options.get(name) for name in TARGET_OPTIONS}
    fields['extra_vars'] = parse_extra_vars(options['extra_vars']) if options.get('extra_vars') else None
    fields['plan'] = batch_plan(options, window_end, base_plan)
    return {key: value for key, value in fields.items() if value is not None}


def one_trigger(choices: dict, required: bool = True) -> tuple[str, str] | None:
    """(kind, value) of the one trigger option given; `choices` maps each kind to (its option, the
    value given or None). More than one, or none when one is required, ends the command."""
    given = [(kind, value) for kind, (_, value) in choices.items() if value is not None]
    if len(given) > 1 or (required and not given):
        fail('give %s: %s' % ('one of' if required else 'at most one of',
                              ', '.join(option for option, _ in choices.values())))
    return given[0] if given else None
