"""Grant statements as `lakehouse grant` and `revoke` read them (Lake Formation's and
SQL's shape)::

    SELECT ON TABLE retail.customers EXCLUDING email TO analyst
    SELECT, INSERT ON ALL TABLES IN landing TO data_engineer WITH GRANT OPTION
    SELECT ON TAG pii=false,domain=sales|marketing TO analyst
    GRANT OPTION FOR SELECT ON FILTER eu_customers FROM eu_analyst   (revoke)

Keywords are case-insensitive; names are as written. Pure functions: nothing is
checked against the catalog or the policy here (see :mod:`.admin`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import ValidationError

from lakehouse.errors import PolicyError
from lakehouse.governance.policy import Grant, Permission, Resource

GRANT_SYNTAX = (
    "PERMISSIONS ON {TABLE t [COLUMNS a,b | EXCLUDING a,b] | NAMESPACE ns | "
    "ALL TABLES IN ns | FILTER name | TAG k=v[,k2=v2]} TO principal [WITH GRANT OPTION]"
)
_STATEMENT = re.compile(
    r"^(?P<option_for>GRANT\s+OPTION\s+FOR\s+)?(?P<permissions>.+?)\s+ON\s+(?P<target>.+?)"
    r"\s+(?P<direction>TO|FROM)\s+(?P<principal>\S+)(?P<with_option>\s+WITH\s+GRANT\s+OPTION)?$",
    re.IGNORECASE | re.DOTALL,
)
_TARGETS = (
    ("table", re.compile(r"^TABLE\s+(\S+?)(?:\s+(COLUMNS|EXCLUDING)\s+(.+))?$", re.I | re.S)),
    ("all_tables", re.compile(r"^ALL\s+TABLES\s+IN\s+(?:NAMESPACE\s+)?(\S+)$", re.I)),
    ("namespace", re.compile(r"^(?:NAMESPACE|DATABASE)\s+(\S+)$", re.I)),
    ("filter", re.compile(r"^(?:DATA\s+CELLS\s+)?FILTER\s+(\S+)$", re.I)),
    ("tags", re.compile(r"^TAGS?\s+(.+)$", re.I | re.S)),
    # A bare name, as denials' hints write it: ns.table is a table, ns a namespace.
    ("bare", re.compile(r"^([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)?)$")),
)


def _syntax_error(problem: str, verb: str) -> PolicyError:
    direction = "FROM" if verb == "revoke" else "TO"
    return PolicyError(
        f"Cannot read the {verb}: {problem} Nothing was changed.",
        hint=f"lakehouse {verb} {GRANT_SYNTAX.replace(' TO ', f' {direction} ')}",
    )


def parse_statement(words: Sequence[str], verb: str = "grant") -> Grant:
    """The Grant a `lakehouse grant`/`revoke` statement names (PolicyError if none).

    ``revoke ... FROM`` and ``revoke GRANT OPTION FOR ...`` (takes only the right to
    grant: the result's ``grant_option`` is True) are read with ``verb="revoke"``."""
    found = _STATEMENT.match(" ".join(words).strip())
    if found is None:
        raise _syntax_error("expected PERMISSIONS ON RESOURCE TO PRINCIPAL.", verb)
    expected = "FROM" if verb == "revoke" else "TO"
    if found["direction"].upper() != expected:
        raise _syntax_error(f"a {verb} names its principal after {expected}.", verb)
    if verb == "revoke" and found["with_option"]:
        raise _syntax_error("to revoke only the grant option, write GRANT OPTION FOR first.", verb)
    if verb == "grant" and found["option_for"]:
        raise _syntax_error("GRANT OPTION FOR belongs to revoke.", verb)
    names = [p.upper() for p in re.split(r"[\s,]+", found["permissions"].strip()) if p]
    known = {p.value for p in Permission}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise _syntax_error(f"unknown permission(s) {', '.join(unknown)} (known: "
                            f"{', '.join(sorted(known))}).", verb)  # fmt: skip
    try:
        return Grant(
            principal=found["principal"], permissions=tuple(Permission(n) for n in names),
            resource=parse_target(found["target"].strip(), verb),
            grant_option=bool(found["with_option"] or found["option_for"]),
        )  # fmt: skip
    except ValidationError as exc:
        problem = "; ".join(str(e["msg"]) for e in exc.errors(include_url=False))
        raise _syntax_error(problem + ".", verb) from None


def parse_target(text: str, verb: str = "grant") -> Resource:
    """The Resource after ON (see GRANT_SYNTAX)."""
    for kind, pattern in _TARGETS:
        found = pattern.match(text)
        if found is None:
            continue
        if kind == "table":
            listed = _names(found[3]) if found[3] else None
            if listed is not None and not listed:
                raise _syntax_error(f"{found[2].upper()} needs column names.", verb)
            if listed and found[2].upper() == "COLUMNS":
                return Resource(table=found[1], columns=tuple(listed))
            return Resource(table=found[1], excluded_columns=tuple(listed) if listed else None)
        if kind in ("namespace", "all_tables"):
            return Resource(namespace=found[1], all_tables=kind == "all_tables")
        if kind == "filter":
            return Resource(data_cells_filter=found[1])
        if kind == "bare":
            name = found[1]
            return Resource(table=name) if "." in name else Resource(namespace=name)
        return Resource(tags=parse_tag_expression(found[1], verb))
    raise _syntax_error(f"cannot read the resource {text!r}.", verb)


def parse_tag_expression(text: str, verb: str = "grant") -> dict[str, tuple[str, ...]]:
    """``pii=false,domain=sales|marketing`` -> {key: values}; a repeated key adds values."""
    tags: dict[str, tuple[str, ...]] = {}
    for pair in _names(text):
        key, equals, values = pair.partition("=")
        if not equals or not key.strip() or not values.strip():
            raise _syntax_error(f"{pair!r} is not key=value.", verb)
        listed = tuple(v.strip() for v in values.split("|") if v.strip())
        tags[key.strip()] = tuple(dict.fromkeys((*tags.get(key.strip(), ()), *listed)))
    return tags


def _names(text: str) -> list[str]:
    return [n for n in re.split(r"[\s,]+", text.strip()) if n]
