"""The example alert rules and Grafana dashboard (examples/monitoring) load, and every metric,
label and function they use exists: a strict parser of the rule file's schema and of the PromQL
subset the examples use, checked against what a daemon's registry exports. (promtool is not
used: Debian's prometheus package is about 100 MB for one check.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import yaml

from controller.act.apply import Applied
from controller.daemon.metrics import FleetSnapshot, Metrics
from controller.planner.alerts import CustodyFact, FleetFacts
from schemas.journal import Outcome
from schemas.notify import Alert, EventKind
from schemas.plan import Action, ActionKind
from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples" / "monitoring"
BUILTIN = {"up": {"job", "instance"}}
TARGET_LABELS = {"job", "instance"}
FUNCTIONS = {
    "sum", "max", "min", "avg", "count", "topk", "bottomk", "rate", "irate", "increase",
    "delta", "time", "min_over_time", "max_over_time", "avg_over_time", "histogram_quantile",
    "abs", "absent", "clamp_min", "clamp_max", "changes", "vector", "scalar",
}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right"}
_DURATION = re.compile(r"^\d+[smhdwy]$")
_IDENT = re.compile(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*")
_MATCHERS = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"[^"]*"\s*')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def exported() -> dict[str, set[str]]:
    """Every sample name a daemon exports, with its label names."""
    m = Metrics()
    m.actions.labels(kind="add", outcome="done").inc()
    m.revisions_refused.labels(reason="InvalidRevision").inc()
    m.research.labels(outcome="done").inc()
    m.acquisitions.labels(kind="watchlist").inc()
    m.notifications.labels(target="phone", outcome="sent").inc()
    m.pass_duration.observe(0.1)
    facts = FleetFacts(
        alerts=[Alert(key="below-floor/films/x", kind=EventKind.below_floor, subject="x",
                      message="x", after=timedelta(0))],
        notifier="nas",
        custody=[CustodyFact(rule="films", key="a" * 40, name="x", min=2, counted=1, size=10)],
        health={"healthy": 3, "dead": 1})
    m.fleet.set(FleetSnapshot(facts=facts, node_ages={"nas": 5.0}, freshness={"nas": "fresh"},
                              applied_age=60.0, notifier=True))
    out: dict[str, set[str]] = dict(BUILTIN)
    for family in m.registry.collect():
        for s in family.samples:
            out.setdefault(s.name, set()).update(k for k in s.labels if k != "le")
            if s.name.endswith("_bucket"):
                out[s.name].add("le")
    return out


def check_promql(expr: str, metrics: dict[str, set[str]]) -> set[str]:
    """Raise AssertionError for anything unknown in ``expr``; return the labels its result may
    carry (for templates)."""
    assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}") \
        and expr.count("[") == expr.count("]"), f"unbalanced brackets: {expr}"
    used: dict[str, set[str]] = {}

    def matchers(m: re.Match[str]) -> str:
        name, body = m.group(1), m.group(2)
        assert name in metrics, f"unknown metric {name!r} in {expr!r}"
        for part in filter(None, (p.strip() for p in body.split(","))):
            mm = _MATCHER.fullmatch(part)
            assert mm, f"bad label matcher {part!r} in {expr!r}"
            assert mm.group(1) in metrics[name] | TARGET_LABELS, \
                f"{name} has no label {mm.group(1)!r} (it has {sorted(metrics[name])})"
        used[name] = metrics[name]
        return name

    rest = _MATCHERS.sub(matchers, expr)
    grouping: list[set[str]] = []
    by: list[set[str]] = []

    def groups(m: re.Match[str]) -> str:
        labels = {g.strip() for g in m.group(2).split(",") if g.strip()}
        grouping.append(labels)
        if m.group(1) == "by":
            by.append(labels)
        return " "

    rest = _GROUPING.sub(groups, rest)
    for d in re.findall(r"\[([^\]]*)\]", rest):
        assert _DURATION.match(d), f"bad range {d!r} in {expr!r}"
    rest = re.sub(r"\[[^\]]*\]", "", rest)
    for m in _IDENT.finditer(rest):
        word = m.group()
        after = rest[m.end():].lstrip()
        if word in KEYWORDS:
            continue
        if after.startswith("("):
            assert word in FUNCTIONS, f"unknown function {word!r} in {expr!r}"
            continue
        assert word in metrics, f"unknown metric {word!r} in {expr!r}"
        used[word] = metrics[word]
    assert used, f"no metric in {expr!r}"
    available = set().union(*used.values()) | TARGET_LABELS
    for g in grouping:
        assert g <= available, f"grouping by {sorted(g - available)} in {expr!r}"
    return set().union(*by) if by else available


def _templates(text: str) -> Iterator[str]:
    yield from re.findall(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)", text)


def test_the_alert_rules_are_valid_and_use_exported_metrics() -> None:
    metrics = exported()
    doc = yaml.safe_load((EXAMPLES / "prometheus-rules.yml").read_text())
    assert set(doc) == {"groups"}
    names: set[str] = set()
    alerts = 0
    for group in doc["groups"]:
        assert set(group) <= {"name", "rules", "interval", "limit"}, group.keys()
        assert isinstance(group["name"], str) and group["name"] not in names
        names.add(group["name"])
        assert group["rules"]
        for rule in group["rules"]:
            assert ("alert" in rule) != ("record" in rule), rule
            allowed = ({"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
                       if "alert" in rule else {"record", "expr", "labels"})
            assert set(rule) <= allowed, f"unknown keys {set(rule) - allowed}"
            assert isinstance(rule["expr"], str | int | float)
            labels = check_promql(str(rule["expr"]), metrics)
            if "for" in rule:
                assert _DURATION.match(rule["for"]), rule["for"]
            for key in ("labels", "annotations"):
                block = rule.get(key, {})
                assert isinstance(block, dict) and all(
                    isinstance(k, str) and isinstance(v, str) for k, v in block.items())
                for text in block.values():
                    for label in _templates(text):
                        assert label in labels, f"{rule.get('alert')}: $labels.{label} is not " \
                            f"in the result of {rule['expr']!r} ({sorted(labels)})"
            if "alert" in rule:
                alerts += 1
                assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
                assert rule["annotations"]["summary"]
                assert rule["labels"]["severity"] in {"info", "warning", "critical"}
            else:
                assert re.fullmatch(r"[a-z_]+(:[a-z_0-9]+)+", rule["record"])
    assert alerts >= 8


def test_the_dashboard_loads_and_uses_exported_metrics() -> None:
    metrics = exported()
    dash: dict[str, Any] = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    assert {"title", "uid", "schemaVersion", "panels"} <= set(dash)
    assert isinstance(dash["schemaVersion"], int)
    inputs = {i["name"] for i in dash.get("__inputs", [])}
    ids: set[int] = set()
    exprs = 0
    for panel in dash["panels"]:
        assert panel["id"] not in ids
        ids.add(panel["id"])
        assert panel["type"] in {"stat", "timeseries", "bargauge", "table", "gauge"}
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"} and grid["x"] + grid["w"] <= 24
        uid = panel["datasource"]["uid"]
        assert uid.startswith("${") and uid[2:-1] in inputs
        for target in panel["targets"]:
            check_promql(target["expr"], metrics)
            exprs += 1
    assert exprs >= 10


@pytest.mark.parametrize("expr", [
    "max(tva_no_such_metric) > 0",
    'max(tva_torrents{state="dead"})',
    "max by (rule) (tva_torrents)",
    "frobnicate(tva_torrents)",
    "rate(tva_passes_total[5 minutes])",
    "max(tva_torrents",
])
def test_the_checker_refuses_what_does_not_exist(expr: str) -> None:
    with pytest.raises(AssertionError):
        check_promql(expr, exported())


def test_the_fleet_gauges_carry_the_facts() -> None:
    metrics = exported()
    assert {"tva_items_below_floor", "tva_bytes_at_risk", "tva_item_copies_bucket",
            "tva_torrents", "tva_node_status_age_seconds", "tva_applied_revision_age_seconds",
            "tva_revisions_refused_total", "tva_research_total", "tva_acquisitions_total",
            "tva_open_conditions",
            "tva_notifications_total", "tva_notifier"} <= set(metrics)



def test_acquisitions_committed_are_counted_apart_from_searches() -> None:
    def research(target: str, outcome: Outcome, result: str = "") -> Applied:
        action = Action(id=f"nas/research/{target}", node="nas", kind=ActionKind.research,
                        target=target, reason="r")
        return Applied(action=action, outcome=outcome, result=result)

    m = Metrics()
    m.count([
        research("watch/films/film-a", Outcome.ok, "proposed A.1080p (5f1d0c6a2b8e) in 0123abcd"),
        research("watch/films/film-b", Outcome.ok, "already proposed: B.720p (ab12)"),
        research("watch/films/film-c", Outcome.failed),
        research("e" * 40, Outcome.ok, "proposed C.Replacement (cd34), pull request 7"),
    ])

    def value(name: str, **labels: str) -> float | None:
        return m.registry.get_sample_value(name, labels)

    assert value("tva_research_total", outcome="ok") == 3
    assert value("tva_research_total", outcome="failed") == 1
    assert value("tva_acquisitions_total", kind="watchlist") == 1
    assert value("tva_acquisitions_total", kind="replacement") == 1
    assert value("tva_actions_total", kind="research", outcome="ok") == 3
