"""The conversation's states and edges, built from the procedure, and the same graph as a diagram.

`build_edges` lists every state and, for each trigger, the states it may lead to; `Engine` turns
that into its `transitions` machine and `diagram` draws it. State names: `language`, `privacy`,
`triage`, `category`, `danger`, one state per schema step (`<schema>_<step>`), one per form field
(`flows.forms.field_state`), then `summary`, `edit`, `submitting` and the `END_STATES`. Pure.
"""

from __future__ import annotations

from flows.forms import field_state, field_triggers
from flows.model import LANGUAGES
from flows.procedure import Procedure, Schema, Step, TriageOption

END_STATES = ("done", "resolved", "stopped")

Edges = dict[str, dict[str, set[str]]]


def step_state(procedure: Procedure, schema: Schema, index: int) -> str:
    """The state of a schema's step; the complaint step starts with its form's first question."""
    step = procedure.step(schema.steps[index])
    form = procedure.form_for_step(step.id)
    if step.kind == "complaint" and form:
        return field_state(form, form.fields[0])
    return f"{schema.id}_{step.id}"


def step_at(procedure: Procedure, state: str) -> tuple[Schema, int, Step] | None:
    """The schema step whose own state this is (`<schema>_<step>`), if it is one."""
    for schema in procedure.schemas.values():
        for index, step_id in enumerate(schema.steps):
            if state == f"{schema.id}_{step_id}":
                return schema, index, procedure.step(step_id)
    return None


def next_kind(procedure: Procedure, schema: Schema, index: int, kind: str) -> int | None:
    """The index of the first step of `kind` after `index`, if the schema has one."""
    kinds = procedure.kinds(schema)
    for following in range(index + 1, len(kinds)):
        if kinds[following] == kind:
            return following
    return None


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


def step_number(procedure: Procedure, schema: Schema, step: str | int) -> dict[str, int]:
    """"Step 2 of 4": the schema's steps plus, when it ends with a complaint, the committee's
    investigation (000 step 4). `step`: the step's index, or its id or kind (the first such)."""
    kinds = procedure.kinds(schema)
    if isinstance(step, int):
        index = step
    else:
        found = [i for i, s in enumerate(schema.steps) if step in (s, kinds[i])]
        index = found[0] if found else 0
    extra = 1 if kinds and kinds[-1] == "complaint" else 0
    return {"step": index + 1, "total": len(kinds) + extra}


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
    for schema in p.schemas.values():
        for index, step_id in enumerate(schema.steps):
            step = p.step(step_id)
            state = step_state(p, schema, index)
            last = index + 1 >= len(schema.steps)
            following = state if last else step_state(p, schema, index + 1)
            form = p.form_for_step(step_id)
            complaint_at = next_kind(p, schema, index, "complaint")
            if step.kind == "talk":
                # 002 §2.3, 003 §5: a solved talk may be registered as a signal, never a complaint.
                add(state, "talk_helped", "submitting" if step.register_solved else "resolved")
                add(state, "talk_not_helped", following)
                if not step.required:
                    add(state, "talk_not_tried", following)
                if complaint_at is not None:
                    add(state, "skip_to_complaint", step_state(p, schema, complaint_at))
            elif step.kind == "mediation" and form:
                add(state, "request_yes", field_state(form, form.fields[0]))
                add(state, "request_no", following)
            elif step.kind == "confidant" and form:
                prefs = ("pref_female", "pref_male", "pref_none") if step.preference \
                    else ("pref_none",)
                for pref in prefs:
                    add(state, pref, field_state(form, form.fields[0]))
                add(state, "pref_no_thanks", following)
            elif step.kind == "external":
                add(state, "external_done", "done")
                if not last:
                    add(state, "external_next", following)
            elif step.kind == "exclusions":
                for exclusion in p.exclusions:
                    add(state, f"excl_{exclusion.id}", "referral")
                add(state, "excl_none", following)
    if "report" in p.forms:
        report = p.forms["report"]
        add("referral", "report", field_state(report, report.fields[0]))
        add("referral", "finish", "done")
    for form in p.forms.values():
        states = [field_state(form, f) for f in form.fields]
        for index, field_id in enumerate(form.fields):
            source = states[index]
            onward = {*states[index + 1 :], "summary", "admissibility", "no_consent"}
            for trigger in field_triggers(field_id, form):
                add(source, trigger, *onward)
            if field_id == "contact":
                add(source, "contact_phone", f"{form.id}_contact_value")
                add(source, "contact_email", f"{form.id}_contact_value")
                add(f"{form.id}_contact_value", "answer", *onward)
        add("edit", "edit", *states, f"{form.id}_contact_value")
    for form in p.forms.values():
        if "who" in form.fields or "when" in form.fields:
            # 001 art. 13: anonymous, or possibly out of time; the client decides what to do.
            states = [field_state(form, f) for f in form.fields]
            add("admissibility", "adm_send", *states, "summary", "no_consent")
            add("admissibility", "adm_register", *states, "summary", "no_consent")
            if "who" in form.fields:
                add("admissibility", "adm_give_name", field_state(form, "who"))
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
    if any(step.register_solved for step in p.steps.values()):
        add("submitting", "registered", "resolved")
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


def _node(procedure: Procedure, state: str) -> str:
    """The step or form a state belongs to: a form's questions and its checks are one node."""
    from flows.forms import Forms

    if state in ("language", "privacy"):
        return "start"
    if state in ("triage", "category", "danger"):
        return "triage"
    if state in ("summary", "edit", "admissibility", "no_consent"):
        return "check_and_send"
    form = Forms(procedure).form_of(state)
    if form is not None:
        return f"form_{form.id}"
    return state


def step_diagram(procedure: Procedure, edges: Edges, fmt: str = "mermaid") -> str:
    """One node per step or form, with the routing between them: Mermaid or Graphviz DOT.

    Drawn from the same edges as `diagram`, with the states folded into their step or form (see
    `_node`); an arrow's label lists the buttons that take it (typed answers are left out).
    """
    routes: dict[tuple[str, str], set[str]] = {}
    for source, triggers in edges.items():
        for trigger, dests in triggers.items():
            if trigger == "reset":
                continue
            for dest in dests:
                a, b = _node(procedure, source), _node(procedure, dest)
                if a == b:
                    continue
                labels = routes.setdefault((a, b), set())
                if trigger != "answer" and not trigger.startswith("lang_"):
                    labels.add(trigger)
    nodes = sorted({n for pair in routes for n in pair})

    def label(pair: tuple[str, str]) -> str:
        shown = sorted(routes[pair])
        return ", ".join(shown[:4]) + (", …" if len(shown) > 4 else "")

    if fmt == "dot":
        lines = [f'digraph "{procedure.id}" {{', "  rankdir=TB;", "  node [shape=box];"]
        for node in nodes:
            shape = ' shape=ellipse' if node in (*END_STATES, "start") else ""
            lines.append(f'  "{node}" [label="{node}"{shape}];')
        for (a, b) in sorted(routes):
            text = label((a, b))
            lines.append(f'  "{a}" -> "{b}"' + (f' [label="{text}"];' if text else ";"))
        return "\n".join(lines) + "\n}\n"
    if fmt != "mermaid":
        raise ValueError(f"unknown diagram format {fmt!r} (mermaid or dot)")
    lines = ["flowchart TD"]
    for node in nodes:
        lines.append(f"    {node}([{node}])" if node in (*END_STATES, "start")
                     else f"    {node}[{node}]")
    for (a, b) in sorted(routes):
        text = label((a, b))
        lines.append(f"    {a} -->|{text}| {b}" if text else f"    {a} --> {b}")
    return "\n".join(lines) + "\n"
