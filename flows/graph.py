"""The conversation's states and edges, built from the procedure, and the same graph as a diagram.

`build_edges` lists every state and, for each trigger, the states it may lead to; `Engine` turns
that into its `transitions` machine and `diagram` draws it. State names: `language`, `privacy`,
`triage`, `category`, `danger`, one state per schema step (`<schema>_<step>`), one per form field
(`flows.forms.field_state`), then `summary`, `edit`, `submitting` and the `END_STATES`. Pure.
"""

from __future__ import annotations

from flows.forms import field_state, field_triggers
from flows.model import LANGUAGES
from flows.procedure import Procedure, Schema, TriageOption

END_STATES = ("done", "resolved", "stopped")

Edges = dict[str, dict[str, set[str]]]


def step_state(procedure: Procedure, schema: Schema, index: int) -> str:
    """The state of a schema's step; the complaint step starts with its form's first question."""
    step = schema.steps[index]
    form = procedure.form_for_step(step)
    if step == "complaint" and form:
        return field_state(form, form.fields[0])
    return f"{schema.id}_{step}"


def after_category(procedure: Procedure, schema: Schema) -> str:
    return "danger" if schema.ask_danger else step_state(procedure, schema, 0)


def triage_choices(procedure: Procedure) -> list[tuple[str, TriageOption, str | None]]:
    """The first question's buttons: (button id, triage option, category).

    An option without a category shows its schema's categories as buttons of their own, so that
    one press chooses both the route and the category (issue 14: fewer steps).
    """
    choices: list[tuple[str, TriageOption, str | None]] = []
    for option in procedure.triage:
        schema = procedure.schemas[option.schema]
        if option.category is None and schema.categories:
            choices.extend((category, option, category) for category in schema.categories)
        else:
            choices.append((option.id, option, option.category))
    return choices


def asks_danger(procedure: Procedure) -> bool:
    """Whether the first question carries the 'I am in danger now' button (a schema asks it)."""
    return any(schema.ask_danger for schema in procedure.schemas.values())


def step_number(schema: Schema, step: str) -> dict[str, int]:
    """"Step 2 of 4": the schema's steps plus the committee's investigation (000 step 4)."""
    steps = schema.steps
    return {"step": steps.index(step) + 1 if step in steps else 1, "total": len(steps) + 1}


def build_edges(procedure: Procedure) -> Edges:
    """Every state, and for each trigger the states it may lead to. Built from the procedure."""
    p = procedure
    edges: Edges = {}

    def add(source: str, trigger: str, *dests: str) -> None:
        edges.setdefault(source, {}).setdefault(trigger, set()).update(dests)

    # The language choice shows the privacy notice and the first question at once (issue 14).
    # `privacy` and `category`/`danger` stay for conversations stored before that change.
    for lang in LANGUAGES:
        add("language", f"lang_{lang}", "triage")
    add("privacy", "ok", "triage")
    for button, option, _category in triage_choices(p):
        add("triage", button, step_state(p, p.schemas[option.schema], 0))
    for schema in p.schemas.values():
        for category in schema.categories:
            add("category", category, after_category(p, schema))
        if schema.ask_danger:  # stored conversations only; new ones ask at the triage
            for trigger in ("danger_yes", "danger_no"):
                add("danger", trigger, step_state(p, schema, 0))
    complaint = p.forms["complaint"]
    complaint_start = field_state(complaint, complaint.fields[0])
    for schema in p.schemas.values():
        for index, step in enumerate(schema.steps):
            state = step_state(p, schema, index)
            following = (
                step_state(p, schema, index + 1) if index + 1 < len(schema.steps) else state
            )
            form = p.form_for_step(step)
            if step == "talk":
                add(state, "talk_helped", "resolved")
                add(state, "talk_not_helped", following)
                add(state, "talk_not_tried", following)
                add(state, "skip_to_complaint", complaint_start)
            elif step == "mediation" and form:
                add(state, "request_yes", field_state(form, form.fields[0]))
                add(state, "request_no", following)
            elif step == "confidant" and form:
                for pref in ("pref_female", "pref_male", "pref_none"):
                    add(state, pref, field_state(form, form.fields[0]))
                add(state, "pref_no_thanks", following)
    for form in p.forms.values():
        states = [field_state(form, f) for f in form.fields]
        for index, field_id in enumerate(form.fields):
            source = states[index]
            onward = {*states[index + 1 :], "summary", "admissibility", "no_consent"}
            for trigger in field_triggers(field_id):
                add(source, trigger, *onward)
            if field_id == "contact":
                add(source, "contact_phone", f"{form.id}_contact_value")
                add(source, "contact_email", f"{form.id}_contact_value")
                add(f"{form.id}_contact_value", "answer", *onward)
        add("edit", "edit", *states, f"{form.id}_contact_value")
    complaint_states = [field_state(complaint, f) for f in complaint.fields]
    add("admissibility", "adm_send", *complaint_states, "summary", "no_consent")
    add("admissibility", "adm_register", *complaint_states, "summary", "no_consent")
    add("admissibility", "adm_give_name", complaint_start)
    add("admissibility", "adm_stop", "stopped")
    add("summary", "confirm", "submitting")
    add("summary", "change", "edit")
    # Cancel at the summary: nothing is sent, the answers are kept as "no consent" (000).
    add("summary", "cancel", "no_consent")
    add("no_consent", "consent_yes", "summary")
    add("no_consent", "discard", "stopped")
    request_steps = {
        step_state(p, s, i + 1)
        for s in p.schemas.values()
        for i in range(len(s.steps) - 1)
    }
    add("submitting", "registered", "done", "after_request")
    add("after_request", "continue", *request_steps)
    add("after_request", "finish", "done")
    # Every state after the language may start over (restart, new complaint).
    for source in [*edges, *END_STATES]:
        if source not in ("language", "privacy"):
            add(source, "reset", "triage")
    valid = set(edges)
    for triggers in edges.values():
        for trigger in triggers:
            triggers[trigger] &= valid
    return edges


def diagram(edges: Edges) -> str:
    """The procedure as a Mermaid state diagram, drawn from the same graph the bot runs."""
    lines = ["stateDiagram-v2", "    [*] --> language"]
    for source, triggers in edges.items():
        for trigger, dests in sorted(triggers.items()):
            if trigger == "reset":
                continue
            for dest in sorted(dests):
                lines.append(f"    {source} --> {dest}: {trigger}")
    return "\n".join(lines) + "\n"
