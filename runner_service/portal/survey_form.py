"""A template's survey as a launch form, and the form's answers back as extra vars. The form
only shapes the input: the survey's own checks (runner_service.templates.survey) decide, so a
value that does not convert goes to them as typed and is refused there with its reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from runner_service.errors import Unprocessable

PREFIX = 'v_'  # form field names: survey variable names are identifiers


@dataclass
class Field:
    name: str
    input_name: str
    type: str
    label: str
    description: str
    required: bool
    value: Any  # what the form shows (never a password)
    min: Any = None
    max: Any = None
    min_length: int | None = None
    max_length: int | None = None
    choices: list[tuple[int, str, bool]] = field(default_factory=list)  # (index, label, selected)


def fields(survey: list[dict], given: dict | None = None) -> list[Field]:
    """The form for `survey`, showing `given` values (a refused launch's) or the defaults."""
    found = []
    for variable in survey:
        kind = variable['type']
        value = (given or {}).get(variable['name'], variable.get('default'))
        if kind == 'password':
            value = None
        choices = variable.get('choices') or []
        chosen = value if isinstance(value, list) else [value]
        found.append(Field(
            name=variable['name'], input_name=PREFIX + variable['name'], type=kind,
            label=variable['name'], description=variable.get('description') or '',
            required=bool(variable.get('required')), value=value, min=variable.get('min'), max=variable.get('max'),
            min_length=variable.get('min_length'), max_length=variable.get('max_length'),
            choices=[(index, str(choice), choice in chosen and value is not None)
                     for index, choice in enumerate(choices)]))
    return found


def extra_vars(survey: list[dict], form: FormData) -> dict:
    """The launch's extra vars from the form: only the survey's variables; a field left empty
    is left out (its default applies, or `required` refuses it)."""
    values: dict[str, Any] = {}
    for variable in survey:
        name, kind = variable['name'], variable['type']
        key = PREFIX + name
        choices = variable.get('choices') or []
        if kind == 'boolean':
            values[name] = form.get(key) == 'true'
        elif kind == 'multi-choice':
            picked = [_choice(choices, text) for text in form.getlist(key)
                      if isinstance(text, str) and _clean(name, text)]
            if picked:
                values[name] = picked
        else:
            text = form.get(key)
            if not isinstance(text, str) or text == '':
                continue
            _clean(name, text)
            if kind == 'choice':
                values[name] = _choice(choices, text)
            elif kind in ('integer', 'number'):
                values[name] = _number(text, kind)
            else:
                values[name] = text
    return values


def form_text(form: FormData, key: str) -> str | None:
    """A plain text field of the form (None when absent, empty or a file), refused with a NUL."""
    text = form.get(key)
    if not isinstance(text, str) or not text.strip():
        return None
    _clean(key, text)
    return text.strip()


def _clean(name: str, text: str) -> bool:
    # As the API refuses NUL in a JSON body (request_guard): no tool down the line reads it alike.
    if '\x00' in text:
        raise Unprocessable('%s: a NUL character is not allowed' % name)
    return True


def _choice(choices: list, text: str) -> Any:
    """The choice an option's index names; anything else as sent (the survey refuses it)."""
    if text.isdigit() and int(text) < len(choices):
        return choices[int(text)]
    return text


def _number(text: str, kind: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    if kind == 'number':
        try:
            return float(text)
        except ValueError:
            pass
    return text
