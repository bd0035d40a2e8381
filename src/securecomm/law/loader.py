"""Read policy files strictly into the policy model.

Every problem is reported with the file and line: unknown or duplicate keys, unknown
categories, levels, forms or facts, rules that cannot change the outcome, a missing hold.
"""

from __future__ import annotations

import datetime as dt
import threading
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from securecomm.core import schema
from securecomm.core.places import resolve_place
from securecomm.core.yamlfiles import PolicyFileError, YMap, YSeq, line_of, load_yaml
from securecomm.law.model import (
    DEFAULT_RULE,
    REVIEW,
    AgeUnder,
    AllOf,
    AnyOf,
    CategorySet,
    ChargeMatch,
    CitesSection,
    Clause,
    Condition,
    ConvictionCount,
    Default,
    Fact,
    FormLimit,
    Hold,
    Jurisdiction,
    Kind,
    Layer,
    Not,
    Notice,
    OffenseFilter,
    Policy,
    Question,
    Reference,
    Rule,
    ValueIn,
)

T = TypeVar("T")

KIND_OUTCOMES: dict[str, tuple[str, ...]] = {
    "detainer": ("honor", "decline"),
    "field": ("allowed", "not_allowed"),
}
FIELD_QUESTIONS = ("inquire_status", "arrest_on_hit")
STATUSES = ("enacted", "proposed", "reconstructed")
COUNTINGS = ("business_hours", "clock_hours")
CLAUSE_STATUSES = ("modelled", "approximated", "not_modelled", "reconstructed")
# Broadest first: a policy may narrow only the policies of a broader level.
LAYER_LEVELS = ("federal", "state", "county", "city", "department")

POLICY_KEYS = {
    "required": ("title", "kind", "jurisdiction", "layer", "status", "enacted", "effective", "references", "clauses"),
    "optional": ("dates_note", "notes", "sets", "labels", "hold", "notice", "default", "rules", "questions"),
}
CLAUSE_KEYS = {"required": ("reference", "section", "status", "note"), "optional": ("quote", "paraphrase")}


class _Reader:
    """Checks one file's mappings against the keys they may hold."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, container: Any, key: str | int | None, message: str) -> PolicyFileError:
        return PolicyFileError(self.file, line_of(container, key), message)

    def mapping(self, value: Any, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> YMap:
        if not isinstance(value, YMap):
            raise PolicyFileError(self.file, getattr(value, "line", 0), f"{what} must be a mapping")
        allowed = (*required, *optional)
        for key in value:
            if key not in allowed:
                raise self.fail(value, key, f"unknown key '{key}' in {what}; expected one of: {', '.join(allowed)}")
        for key in required:
            if key not in value:
                raise self.fail(value, None, f"{what} is missing the key '{key}'")
        return value

    def text(self, container: YMap, key: str, *, allow_empty: bool = False) -> str:
        value = container[key]
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise self.fail(container, key, f"'{key}' must be non-empty text")
        return value.strip()

    def sequence(self, container: YMap, key: str) -> YSeq:
        value = container[key]
        if not isinstance(value, YSeq):
            raise self.fail(container, key, f"'{key}' must be a list")
        return value

    def choice(self, container: YMap, key: str, allowed: tuple[str, ...], what: str) -> str:
        value = container[key]
        if value not in allowed:
            raise self.fail(container, key, f"unknown {what} {value!r}; expected one of: {', '.join(allowed)}")
        return value

    def choices(self, container: YMap, key: str, allowed: tuple[str, ...], what: str) -> frozenset[str]:
        value = container[key]
        items = value if isinstance(value, YSeq) else [value]
        for index, item in enumerate(items):
            if item not in allowed:
                where = value if isinstance(value, YSeq) else container
                raise self.fail(
                    where,
                    index if isinstance(value, YSeq) else key,
                    f"unknown {what} {item!r}; expected one of: {', '.join(allowed)}",
                )
        return frozenset(items)

    def date(self, container: YMap, key: str) -> dt.date | None:
        value = container[key]
        if value is None:
            return None
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise self.fail(container, key, f"'{key}' must be a date (YYYY-MM-DD) or null")
        return value

    def number(self, container: YMap, key: str, *, integer: bool = False) -> float:
        value = container[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(container, key, f"'{key}' must be a non-negative number")
        if integer and not isinstance(value, int):
            raise self.fail(container, key, f"'{key}' must be a whole number")
        return value


OFFENSE_KEYS = ("set", "categories", "excluding", "levels", "felony_classes")
CONVICTION_KEYS = (
    *OFFENSE_KEYS,
    "at_least",
    "within_years_of_conviction",
    "within_years_of_release",
    "currently_in_custody",
)
CONDITION_KEYS = ("all", "any", "not", "fact", "age_under", "current_charge", "conviction", *schema.VALUE_FIELDS)


class _PolicyParser:
    def __init__(self, reader: _Reader, kind: Kind, references: dict[str, Reference]) -> None:
        self.read = reader
        self.kind = kind
        self.references = references
        self.sets: dict[str, CategorySet] = {}

    def _defined(self, container: YMap, key: str, defined: dict[str, T], what: str) -> T:
        """The file's own `what` (a reference, a set) that `container[key]` names."""
        name = container[key]
        if name not in defined:
            known = ", ".join(defined) or "(none defined)"
            raise self.read.fail(container, key, f"unknown {what} {name!r}; the file's {what}s are: {known}")
        return defined[name]

    def reference(self, container: YMap, key: str = "reference") -> Reference:
        return self._defined(container, key, self.references, "reference")

    def detainer_part(self, top: YMap, key: str, keys: tuple[str, ...], what: str) -> YMap | None:
        """The policy's mapping `key` (None if it has none), which only a detainer policy may have."""
        if key not in top:
            return None
        if self.kind != "detainer":
            raise self.read.fail(top, key, f"only a detainer policy has {what}")
        return self.read.mapping(top[key], key, keys)

    def _narrowed(
        self, node: YMap, key: str, base: frozenset[str] | None, allowed: tuple[str, ...], what: str
    ) -> frozenset[str] | None:
        """`base` (None: any) narrowed to the choices at `node[key]`, if given."""
        if key not in node:
            return base
        own = self.read.choices(node, key, allowed, what)
        return own if base is None else base & own

    def offenses(self, node: YMap) -> OffenseFilter:
        base = OffenseFilter()
        set_name = None
        if "set" in node:
            set_name = node["set"]
            base = self._defined(node, "set", self.sets, "set").offenses
        excluded = base.excluded_categories
        if "excluding" in node:
            excluded = excluded | self.read.choices(node, "excluding", schema.CATEGORIES, "category")
        return OffenseFilter(
            self._narrowed(node, "categories", base.categories, schema.CATEGORIES, "category"),
            excluded,
            self._narrowed(node, "levels", base.levels, schema.LEVELS, "level"),
            self._narrowed(node, "felony_classes", base.felony_classes, schema.FELONY_CLASSES, "felony class"),
            set_name or base.set_name,
        )

    def condition(self, node: Any, container: Any, key: str | int) -> Condition:
        if not isinstance(node, YMap) or len(node) != 1:
            raise self.read.fail(
                container, key, f"a condition is a mapping with exactly one of: {', '.join(CONDITION_KEYS)}"
            )
        (name,) = node.keys()
        value = node[name]
        if name in ("all", "any"):
            items = self.read.sequence(node, name)
            if not items:
                raise self.read.fail(node, name, f"'{name}' needs at least one condition")
            parsed = tuple(self.condition(item, items, index) for index, item in enumerate(items))
            return AllOf(parsed) if name == "all" else AnyOf(parsed)
        if name == "not":
            return Not(self.condition(value, node, name))
        if name == "fact":
            facts = schema.FIELD_FLAGS if self.kind == "field" else (*schema.CASE_FLAGS, schema.THREE_VALUED_FLAG)
            return Fact(self.read.choice(node, name, facts, "fact"))
        if name in schema.VALUE_FIELDS:
            if (name == "ncic_hit") != (self.kind == "field"):
                raise self.read.fail(node, name, f"'{name}' is not a field of a {self.kind} record")
            return ValueIn(name, self.read.choices(node, name, schema.VALUE_FIELDS[name], name))
        if self.kind == "field" or name not in CONDITION_KEYS:
            raise self.read.fail(node, name, f"unknown condition '{name}' for a {self.kind} policy")
        if name == "age_under":
            return AgeUnder(int(self.read.number(node, name, integer=True)))
        if name == "current_charge":
            spec = self.read.mapping(value, "current_charge", (), OFFENSE_KEYS)
            return ChargeMatch(self.offenses(spec))
        spec = self.read.mapping(value, "conviction", (), CONVICTION_KEYS)
        at_least = int(self.read.number(spec, "at_least", integer=True)) if "at_least" in spec else 1
        if at_least < 1:
            raise self.read.fail(spec, "at_least", "'at_least' must be 1 or more")
        in_custody = spec.get("currently_in_custody", False)
        if in_custody is not True and "currently_in_custody" in spec:
            raise self.read.fail(spec, "currently_in_custody", "'currently_in_custody' is true or left out")
        return ConvictionCount(
            self.offenses(spec),
            at_least,
            self.read.number(spec, "within_years_of_conviction") if "within_years_of_conviction" in spec else None,
            self.read.number(spec, "within_years_of_release") if "within_years_of_release" in spec else None,
            in_custody,
        )

    def category_sets(self, node: Any) -> None:
        if not isinstance(node, YMap):
            raise PolicyFileError(self.read.file, getattr(node, "line", 0), "'sets' must be a mapping of set names")
        for name, spec in node.items():
            spec = self.read.mapping(spec, f"set '{name}'", ("description", "approximates"), OFFENSE_KEYS[1:])
            offenses = self.offenses(spec)
            self.sets[name] = CategorySet(
                name,
                self.read.text(spec, "description"),
                self.read.text(spec, "approximates"),
                OffenseFilter(
                    offenses.categories, offenses.excluded_categories, offenses.levels, offenses.felony_classes, name
                ),
            )

    def question(self, name: str, node: YMap, outcomes: tuple[str, ...]) -> Question:
        default_node = self.read.mapping(node["default"], "default", ("decision", "reference", "section", "text"))
        default = Default(
            self.read.choice(default_node, "decision", outcomes, "decision"),
            self.reference(default_node),
            self.read.text(default_node, "section", allow_empty=True),
            self.read.text(default_node, "text"),
        )
        rules: list[Rule] = []
        rules_node = self.read.sequence(node, "rules") if "rules" in node else YSeq()
        for index, rule_node in enumerate(rules_node):
            if not isinstance(rule_node, YMap):
                raise self.read.fail(rules_node, index, "a rule must be a mapping")
            spec = self.read.mapping(
                rule_node, "rule", ("id", "decision", "reference", "section", "text", "when"), ("unless",)
            )
            rule_id = self.read.text(spec, "id")
            if rule_id in (DEFAULT_RULE, *(rule.id for rule in rules)):
                raise self.read.fail(spec, "id", f"rule id '{rule_id}' is used twice or is reserved")
            decision = self.read.choice(spec, "decision", outcomes, "decision")
            if decision == default.decision:
                raise self.read.fail(
                    spec,
                    "decision",
                    f"rule '{rule_id}' decides '{decision}', the same as the default: it cannot change anything",
                )
            rules.append(
                Rule(
                    rule_id,
                    decision,
                    self.reference(spec),
                    self.read.text(spec, "section", allow_empty=True),
                    self.read.text(spec, "text"),
                    self.condition(spec["when"], spec, "when"),
                    self.condition(spec["unless"], spec, "unless") if "unless" in spec else None,
                )
            )
        return Question(name, outcomes, default, tuple(rules))


def parse_policy(document: Any, policy_id: str, file: str) -> Policy:
    """Build a Policy from a YAML document read by `load_yaml`."""
    read = _Reader(file)
    top = read.mapping(document, "the policy", POLICY_KEYS["required"], POLICY_KEYS["optional"])
    kind: Kind = read.choice(top, "kind", ("detainer", "classification", "field"), "kind")  # type: ignore[assignment]
    jurisdiction_node = read.mapping(top["jurisdiction"], "jurisdiction", ("name", "places"))
    places = read.sequence(jurisdiction_node, "places")
    if not places or not all(isinstance(place, str) for place in places):
        raise read.fail(
            jurisdiction_node, "places", "'places' must list place codes (US, a state code or a county FIPS)"
        )

    references: dict[str, Reference] = {}
    reference_list = read.sequence(top, "references")
    if not reference_list:
        raise read.fail(top, "references", "a policy needs at least one reference")
    for node in reference_list:
        spec = read.mapping(node, "reference", ("id", "cite", "title", "url"))
        ref_id = read.text(spec, "id")
        if ref_id in references:
            raise read.fail(spec, "id", f"reference id '{ref_id}' is used twice")
        references[ref_id] = Reference(
            ref_id, read.text(spec, "cite"), read.text(spec, "title"), read.text(spec, "url")
        )

    parser = _PolicyParser(read, kind, references)
    if "sets" in top:
        parser.category_sets(top["sets"])

    if kind == "field":
        if "default" in top or "rules" in top or "questions" not in top:
            raise read.fail(
                top, None, "a field policy has 'questions' (inquire_status, arrest_on_hit), not 'default'/'rules'"
            )
        questions_node = read.mapping(top["questions"], "questions", FIELD_QUESTIONS)
        questions = tuple(
            parser.question(
                name, read.mapping(questions_node[name], name, ("default",), ("rules",)), KIND_OUTCOMES["field"]
            )
            for name in FIELD_QUESTIONS
        )
    else:
        if "questions" in top or "default" not in top:
            raise read.fail(top, None, f"a {kind} policy has 'default' and 'rules', not 'questions'")
        if kind == "classification":
            if "labels" not in top:
                raise read.fail(top, None, "a classification policy lists its 'labels'")
            labels = read.sequence(top, "labels")
            if len(set(labels)) != len(labels) or REVIEW in labels or not all(isinstance(x, str) for x in labels):
                raise read.fail(top, "labels", "labels must be distinct text, and 'review' is reserved")
            outcomes = tuple(labels)
        else:
            if "labels" in top:
                raise read.fail(top, "labels", "only a classification policy has labels")
            outcomes = KIND_OUTCOMES["detainer"]
        questions = (parser.question("decision", top, outcomes),)

    hold = None
    hold_node = parser.detainer_part(top, "hold", ("hours", "counting", "reference", "section"), "a hold")
    if hold_node is not None:
        hold = Hold(
            int(read.number(hold_node, "hours", integer=True)),
            read.choice(hold_node, "counting", COUNTINGS, "counting"),  # type: ignore[arg-type]
            parser.reference(hold_node),
            read.text(hold_node, "section", allow_empty=True),
        )
    elif kind == "detainer":
        question = questions[0]
        if question.default.decision == "honor" or question.rules:
            raise read.fail(top, None, "a policy that can honor a detainer must state its maximum 'hold'")

    notice = None
    notice_node = parser.detainer_part(top, "notice", ("decisions", "reference", "section", "text"), "a notice to ICE")
    if notice_node is not None:
        notice = Notice(
            read.choices(notice_node, "decisions", KIND_OUTCOMES["detainer"], "decision"),
            parser.reference(notice_node),
            read.text(notice_node, "section", allow_empty=True),
            read.text(notice_node, "text"),
        )

    layer_node = read.mapping(top["layer"], "layer", ("level",), ("narrows",))
    layer = Layer(
        read.choice(layer_node, "level", LAYER_LEVELS, "layer level"),  # type: ignore[arg-type]
        read.text(layer_node, "narrows") if "narrows" in layer_node else None,
    )
    clauses = _clauses(read, parser, top)
    cited_parts: list[CitesSection] = [part for question in questions for part in (question.default, *question.rules)]
    cited_parts += [part for part in (hold, notice) if part is not None]
    _check_citations(read, top, clauses, cited_parts)

    status = read.choice(top, "status", STATUSES, "status")
    effective = read.date(top, "effective")
    if effective is None and status != "proposed":
        raise read.fail(top, "effective", "only a proposed policy may have no effective date")
    return Policy(
        id=policy_id,
        title=read.text(top, "title"),
        kind=kind,
        jurisdiction=Jurisdiction(read.text(jurisdiction_node, "name"), tuple(places)),
        status=status,  # type: ignore[arg-type]
        enacted=read.date(top, "enacted"),
        effective=effective,
        references=tuple(references.values()),
        sets=tuple(parser.sets.values()),
        questions=questions,
        layer=layer,
        clauses=clauses,
        hold=hold,
        notice=notice,
        dates_note=read.text(top, "dates_note") if "dates_note" in top else "",
        notes=read.text(top, "notes") if "notes" in top else "",
        source_file=file,
    )


def _clauses(read: _Reader, parser: _PolicyParser, top: YMap) -> tuple[Clause, ...]:
    """The clauses of the policy's text, each quoted or paraphrased, with its status."""
    clause_list = read.sequence(top, "clauses")
    if not clause_list:
        raise read.fail(top, "clauses", "a policy lists at least one clause of its text")
    clauses: list[Clause] = []
    for node in clause_list:
        spec = read.mapping(node, "clause", CLAUSE_KEYS["required"], CLAUSE_KEYS["optional"])
        if ("quote" in spec) == ("paraphrase" in spec):
            raise read.fail(
                spec, None, "a clause gives either 'quote' (the source's words) or 'paraphrase' (when it cannot quote)"
            )
        reference = parser.reference(spec)
        section = read.text(spec, "section", allow_empty=True)
        if any(clause.reference == reference and clause.section == section for clause in clauses):
            raise read.fail(spec, "section", f"the clause {reference.citation(section)} is listed twice")
        quoted = "quote" in spec
        clauses.append(
            Clause(
                reference,
                section,
                read.text(spec, "quote" if quoted else "paraphrase"),
                quoted,
                read.choice(spec, "status", CLAUSE_STATUSES, "clause status"),  # type: ignore[arg-type]
                read.text(spec, "note"),
            )
        )
    return tuple(clauses)


def _check_citations(read: _Reader, top: YMap, clauses: tuple[Clause, ...], parts: list[CitesSection]) -> None:
    """Every citation of a rule, default, hold or notice is a listed clause; a clause not modelled is cited by none."""
    listed = {(clause.reference.id, clause.section): clause for clause in clauses}
    for part in parts:
        clause = listed.get((part.reference.id, part.section))
        if clause is None:
            raise read.fail(
                top, "clauses", f"{part.citation} is cited by the policy but is not one of its listed clauses"
            )
        if clause.status == "not_modelled":
            raise read.fail(top, "clauses", f"{part.citation} is cited by the policy but its clause says not_modelled")


# --- the shipped library -----------------------------------------------------------------


class UnknownPolicyError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def library_root() -> Path:
    return Path(str(resources.files("securecomm.law") / "policies"))


def policy_ids() -> list[str]:
    root = library_root()
    return sorted(
        path.relative_to(root).with_suffix("").as_posix()
        for path in root.rglob("*.yaml")
        if not path.name.endswith(CASES_SUFFIX) and path.relative_to(root).as_posix() != FORMS_FILE
    )


FORMS_FILE = "detainer-forms.yaml"


@cache
def load_forms() -> dict[str, FormLimit]:
    """What each detainer form asks of the jail (`policies/detainer-forms.yaml`), by form."""
    display = f"policies/{FORMS_FILE}"
    document = load_yaml(library_root() / FORMS_FILE, display)
    read = _Reader(display)
    top = read.mapping(document, "the forms file", ("forms",))
    forms_node = read.mapping(top["forms"], "forms", (), schema.DETAINER_FORMS)
    missing = [form for form in schema.DETAINER_FORMS if form not in forms_node]
    if missing:
        raise read.fail(forms_node, None, f"every detainer form needs an entry; missing: {', '.join(missing)}")
    forms = {}
    for form, node in forms_node.items():
        spec = read.mapping(
            node, f"form {form}", ("title", "status", "detention", "reference", "section", "text"), ("hold", "note")
        )
        detention = spec["detention"]
        if not isinstance(detention, bool):
            raise read.fail(spec, "detention", "'detention' must be true or false")
        if detention != ("hold" in spec):
            raise read.fail(spec, None, "a form that asks for detention states its 'hold'; one that does not, none")
        hours = counting = None
        if detention:
            hold = read.mapping(spec["hold"], "hold", ("hours", "counting"))
            hours = int(read.number(hold, "hours", integer=True))
            counting = read.choice(hold, "counting", COUNTINGS, "counting")
        ref = read.mapping(spec["reference"], "reference", ("cite", "title", "url"))
        forms[form] = FormLimit(
            form=form,
            title=read.text(spec, "title"),
            status=read.choice(spec, "status", STATUSES, "status"),  # type: ignore[arg-type]
            detention=detention,
            hours=hours,
            counting=counting,  # type: ignore[arg-type]
            reference=Reference(form, read.text(ref, "cite"), read.text(ref, "title"), read.text(ref, "url")),
            section=read.text(spec, "section", allow_empty=True),
            text=read.text(spec, "text"),
            note=read.text(spec, "note") if "note" in spec else "",
        )
    return forms


CASES_SUFFIX = ".cases.yaml"


def cases_path(policy_id: str) -> Path:
    """The YAML cases written from a policy's text, beside the policy file."""
    return library_root() / f"{policy_id}{CASES_SUFFIX}"


@cache
def load_policy(policy_id: str) -> Policy:
    """Load a policy of the library by its id, the path under policies/ (e.g. `ct/trust-act-2013`)."""
    path = library_root() / f"{policy_id}.yaml"
    if not policy_id or ".." in policy_id.split("/") or not path.is_file():
        known = ", ".join(policy_ids())
        raise UnknownPolicyError(f"unknown policy '{policy_id}'; the library has: {known}")
    display = f"policies/{policy_id}.yaml"
    return parse_policy(load_yaml(path, display), policy_id, display)


# Threads that ask for the library at once (a run in parts of states) wait for one parse: the cache alone
# lets each of them parse all of it, one after the other under the interpreter's lock.
_LIBRARY_LOCK = threading.Lock()


def load_library() -> list[Policy]:
    """Every policy of the library, its layers checked against one another (`check_layers`)."""
    with _LIBRARY_LOCK:
        return list(_checked_library())


@cache
def _checked_library() -> tuple[Policy, ...]:
    library = [load_policy(policy_id) for policy_id in policy_ids()]
    check_layers(library)
    return tuple(library)


def check_layers(library: list[Policy]) -> None:
    """A policy that narrows a jurisdiction names one of the library's, of a broader level, covering its places."""
    by_name: dict[str, list[Policy]] = {}
    for policy in library:
        by_name.setdefault(policy.jurisdiction.name, []).append(policy)
    for policy in library:
        narrowed_name = policy.layer.narrows
        if narrowed_name is None:
            continue
        narrowed = by_name.get(narrowed_name)
        if not narrowed or narrowed_name == policy.jurisdiction.name:
            raise PolicyFileError(
                policy.source_file,
                0,
                f"layer: {policy.id} narrows {narrowed_name!r}, which is not another jurisdiction of the library",
            )
        own_counties = set(resolve_place(",".join(policy.jurisdiction.places)))
        for broader in narrowed:
            if LAYER_LEVELS.index(broader.layer.level) >= LAYER_LEVELS.index(policy.layer.level):
                raise PolicyFileError(
                    policy.source_file,
                    0,
                    f"layer: a {policy.layer.level} policy can narrow only a broader level; {broader.id} is"
                    f" {broader.layer.level}",
                )
            if not own_counties <= set(resolve_place(",".join(broader.jurisdiction.places))):
                raise PolicyFileError(
                    policy.source_file, 0, f"layer: {policy.id} reaches places that {broader.id} does not cover"
                )


def policies_in_force(place: str, day: dt.date, kind: Kind = "detainer") -> list[Policy]:
    """The library's policies of a kind in force at a place on a day, latest effective last.

    A later policy of the same jurisdiction supersedes an earlier one; policies of different
    jurisdictions — a state's statute, a county's ordinance, a department's policy that narrows
    the statute (its `layer`) — are all in force at once, and `law.layers.combine` states how
    their decisions combine (decline beats review beats honor; the earliest hold deadline wins).
    """
    latest: dict[str, Policy] = {}
    for policy in load_library():
        if policy.kind == kind and place in policy.jurisdiction.places and policy.in_force_on(day):
            current = latest.get(policy.jurisdiction.name)
            if current is None or (current.effective or dt.date.min) <= (policy.effective or dt.date.min):
                latest[policy.jurisdiction.name] = policy
    return sorted(latest.values(), key=lambda policy: policy.effective or dt.date.min)


def layers_of(policy: Policy, day: dt.date) -> list[Policy]:
    """The policy and, broadest first, the policies it narrows that are in force on the day.

    A department's policy applies on top of the statute it works under: deciding under it alone
    would let it honor what the statute forbids. Each narrowed jurisdiction's latest policy in force
    on the day counts (and the policies that one narrows, in turn).
    """
    layers = [policy]
    narrowed_name = policy.layer.narrows
    while narrowed_name is not None:
        in_force = [
            candidate
            for candidate in load_library()
            if candidate.jurisdiction.name == narrowed_name and candidate.kind == policy.kind
            if candidate.in_force_on(day)
        ]
        if not in_force:
            break
        latest = max(in_force, key=lambda candidate: candidate.effective or dt.date.min)
        layers.insert(0, latest)
        narrowed_name = latest.layer.narrows
    return layers


def layered_with(policy: Policy) -> tuple[list[Policy], list[Policy]]:
    """The policies a policy applies on top of during its time in force (those of the jurisdiction it
    narrows, in effective order), and the library's policies that narrow its own jurisdiction."""
    library = [candidate for candidate in load_library() if candidate.kind == policy.kind]
    narrowed = sorted(
        (
            candidate
            for candidate in library
            if candidate.jurisdiction.name == policy.layer.narrows and candidate.in_force_on(dt.date.max)
        ),
        key=lambda candidate: candidate.effective or dt.date.min,
    )
    beneath = [
        current
        for current, following in zip(narrowed, [*narrowed[1:], None], strict=False)
        if following is None or policy.effective is None or (following.effective or dt.date.min) > policy.effective
    ]
    above = [candidate for candidate in library if candidate.layer.narrows == policy.jurisdiction.name]
    return beneath, above
